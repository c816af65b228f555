import itertools
import random

import pytest

from pipeline.config import LimitsSpec, SegmentSpec
from pipeline.media import MediaError, probe_video
from pipeline.media.ranges import FrameRange, scan_range
from pipeline.plan import (
    BLOCK_SEGMENTS,
    ReferenceMismatch,
    SegmentPlanner,
    plan_segments,
    plan_video,
    plan_video_stream,
)
from tests.clips import make_clip, make_corrupt


def scene_ranges(n_frames, cuts):
    """[start, end) of each scene; `cuts` are the first frames of new scenes."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < n_frames), n_frames]
    return list(itertools.pairwise(bounds))


def covered(segments):
    return [f for s in segments for f in range(s.core_start, s.core_end)]


def test_cores_tile_the_video_exactly_once():
    segments = plan_segments(100, cuts=[30, 71], max_core_frames=16, context_frames=3)
    assert covered(segments) == list(range(100))
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(1 <= s.frames <= 16 for s in segments)


def test_segments_never_cross_a_cut_and_context_is_clipped_at_scene_edges():
    cuts = [30, 71]
    segments = plan_segments(100, cuts=cuts, max_core_frames=16, context_frames=5)
    scenes = scene_ranges(100, cuts)
    for s in segments:
        start, end = scenes[s.scene_index]
        assert start <= s.context_start <= s.core_start < s.core_end <= s.context_end <= end
    first_after_cut = next(s for s in segments if s.core_start == 30)
    assert first_after_cut.context_start == 30  # no context taken from the previous scene
    last_before_cut = next(s for s in segments if s.core_end == 30)
    assert last_before_cut.context_end == 30


def test_overlap_inside_a_scene_is_the_context_length():
    segments = plan_segments(64, cuts=[], max_core_frames=16, context_frames=4)
    inner = segments[1]
    assert (inner.context_start, inner.core_start, inner.core_end, inner.context_end) == (12, 16, 32, 36)
    assert segments[0].context_start == 0 and segments[-1].context_end == 64


def test_long_scene_is_split_evenly_not_leaving_a_sliver():
    segments = plan_segments(33, cuts=[], max_core_frames=16, context_frames=0)
    assert [s.frames for s in segments] == [11, 11, 11]


def test_scene_indices_follow_cuts_and_ignore_out_of_range_cuts():
    segments = plan_segments(20, cuts=[0, 10, 10, 25], max_core_frames=100, context_frames=2)
    assert [(s.scene_index, s.core_start, s.core_end) for s in segments] == [(0, 0, 10), (1, 10, 20)]


def test_one_frame_video():
    (only,) = plan_segments(1, cuts=[], max_core_frames=8, context_frames=4)
    assert (only.context_start, only.core_start, only.core_end, only.context_end) == (0, 0, 1, 1)


@pytest.mark.parametrize("args", [(0, [], 8, 2), (10, [], 0, 2), (10, [], 8, -1)])
def test_invalid_arguments_are_refused(args):
    with pytest.raises(ValueError):
        plan_segments(*args)


def test_plan_video_refuses_a_video_above_the_limits(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", frames=12, size=(64, 36))
    with pytest.raises(MediaError, match="^64x36 is above the limit 48x48$"):
        plan_video(str(clip), SegmentSpec(), 3, LimitsSpec(max_width=48, max_height=48))
    plan = plan_video(str(clip), SegmentSpec(max_core_frames=8), 3, LimitsSpec(max_width=64, max_duration_s=1.0))
    assert [(s.core_start, s.core_end) for s in plan.segments] == [(0, 6), (6, 12)]


def test_at_field_rate_segments_count_fields_and_seek_to_their_source_frames(tmp_path):
    clip = make_clip(tmp_path / "i.mp4", frames=20, size=(48, 32), gop=10, interlaced=True, scene_cut_at=10)
    probe = probe_video(clip)
    plan = plan_video(str(clip), SegmentSpec(max_core_frames=7), 2, deinterlace=("auto", "field"))
    assert plan.deinterlace == "fields" and probe.cuts == [10]
    assert [(s.core_start, s.core_end, s.scene_index) for s in plan.segments] == [
        (0, 6, 0), (6, 13, 0), (13, 20, 0), (20, 26, 1), (26, 33, 1), (33, 40, 1)
    ]  # fmt: skip
    # A segment's context starts and ends on fields; it seeks to the source frames that hold them.
    assert plan.seek_pts == [
        (probe.pts[s.context_start // 2], probe.pts[(s.context_end - 1) // 2]) for s in plan.segments
    ]
    assert (
        plan_video(str(clip), SegmentSpec(max_core_frames=7), 2, deinterlace=("auto", "frame")).deinterlace
        == "interlaced"
    )
    with pytest.raises(ReferenceMismatch, match="field-rate output has twice the input's frames"):
        plan_video(str(clip), SegmentSpec(), 2, reference=str(clip), scale=1, deinterlace=("always", "field"))


@pytest.fixture(scope="module")
def lr_and_hr(tmp_path_factory):
    """A 10-frame 32x24 input and an HR reference of it at x2 with the same timing."""
    folder = tmp_path_factory.mktemp("reference")
    lr = make_clip(folder / "lr.mp4", frames=10, size=(32, 24))
    return lr, make_clip(folder / "hr.mp4", frames=10, size=(64, 48))


def test_a_fitting_reference_gives_seek_points_of_each_core(lr_and_hr):
    lr, hr = lr_and_hr
    plan = plan_video(str(lr), SegmentSpec(max_core_frames=4), 1, reference=str(hr), scale=2)
    ref_pts = probe_video(hr, detect_scenes=False).pts
    assert plan.reference_seek_pts == [(ref_pts[s.core_start], ref_pts[s.core_end - 1]) for s in plan.segments]
    assert plan_video(str(lr), SegmentSpec(), 1).reference_seek_pts is None


@pytest.mark.parametrize(
    ("make_reference", "message"),
    [
        (lambda p: make_clip(p, frames=10, size=(64, 48)), r"^its frames are 64x48, not the input's 32x24 x4 = 128x96"),
        (lambda p: make_clip(p, frames=9, size=(128, 96)), r"^it has 9 frames, the input 10$"),
        (lambda p: make_clip(p, frames=10, size=(128, 96), fps=25), r"^frame 7 is at 0\.280 s, in the input at 0\.292"),
        (make_corrupt, r"^cannot open: "),
    ],
)
def test_a_reference_that_does_not_fit_is_refused_with_the_cause(tmp_path, lr_and_hr, make_reference, message):
    reference = make_reference(tmp_path / "ref.mp4")
    with pytest.raises(ReferenceMismatch, match=message):
        plan_video(str(lr_and_hr[0]), SegmentSpec(), 1, reference=str(reference), scale=4)


@pytest.mark.parametrize("seed", range(12))
def test_segments_planned_as_the_scan_goes_are_the_whole_plan(seed):
    """However the scan tells its progress, the segments are those planned from the whole video, and
    none is told before the frames it reads (context included) are scanned."""
    rng = random.Random(seed)
    n, core, context = rng.randint(1, 2500), rng.randint(1, 40), rng.randint(0, 6)
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 5))))
    planner, told, scanned = SegmentPlanner(core, context), [], 0
    while scanned < n:
        scanned = min(n, scanned + rng.randint(1, 300))
        new = planner.add(scanned, [c for c in cuts if c < scanned])
        assert all(s.context_end <= scanned for s in new)
        told += new
    told += planner.finish(n, cuts)
    whole = plan_segments(n, cuts, core, context)
    assert told == whole and covered(whole) == list(range(n))
    for start, end in scene_ranges(n, cuts):  # no tiny segment: each holds half a segment or its whole scene
        inside = [s for s in whole if start <= s.core_start < end]
        assert all(s.frames >= min(end - start, core) // 2 for s in inside)


def test_a_long_scene_is_planned_in_blocks_told_long_before_its_end():
    planner = SegmentPlanner(max_core_frames=48, context_frames=3)
    assert planner.add(BLOCK_SEGMENTS * 48 + 48, []) == []  # not yet a segment past the first block
    first = planner.add(BLOCK_SEGMENTS * 48 + 49, [])
    assert [(s.core_start, s.core_end) for s in first] == [(48 * i, 48 * i + 48) for i in range(BLOCK_SEGMENTS)]
    assert first[-1].context_end == BLOCK_SEGMENTS * 48 + 3
    # A scene no longer than a block and a segment is split into equal segments, as before.
    assert [s.frames for s in plan_segments(100, [], 48, 3)] == [33, 33, 34]


def test_a_sharded_video_tells_its_first_segments_before_its_scan_ends(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=240, size=(64, 36), gop=12, scene_cut_at=[150])
    spec = SegmentSpec(max_core_frames=4, range_frames=40)
    scanned: list[int] = []

    def scan(ranges: list[FrameRange]):
        for frames in ranges:
            scanned.append(frames.index)
            yield scan_range(str(clip), frames, detect_scenes=True)

    plans = [(plan, len(scanned)) for plan in plan_video_stream(str(clip), spec, 2, scan_ranges=scan)]
    *early, (whole, _) = plans
    assert early and early[0][1] == 1 and not any(plan.complete for plan, _ in early) and whole.complete
    told = [s for plan, _ in early for s in plan.segments]
    assert 0 < len(told) < len(whole.segments) and whole.segments[: len(told)] == told
    assert [p for plan, _ in early for p in plan.seek_pts] == whole.seek_pts[: len(told)]
    serial = plan_video(str(clip), spec, 2)
    assert (whole.segments, whole.seek_pts, whole.probe.cuts) == (serial.segments, serial.seek_pts, serial.probe.cuts)
    assert whole.probe.planning == "sharded: 5 ranges"
