"""The plan task: a bad input's or reference's error comes back, never raised; segments told
before the scan ended stand only if the whole plan holds them."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from actors.plan import _told_differently, plan_stored_video
from pipeline.config import SegmentSpec, load_job_spec
from pipeline.media.ranges import FrameRange, scan_range
from pipeline.plan import plan_video_stream
from pipeline.storage import Storage
from tests.clips import make_clip


def test_plan_stored_video_names_the_reference_in_its_error(tmp_path):
    lr = make_clip(tmp_path / "lr.mp4", frames=10, size=(32, 24))
    hr = make_clip(tmp_path / "hr.mp4", frames=10, size=(64, 48))
    x2, x3 = (load_job_spec(None, {"input": str(lr), "output": str(tmp_path), "scale": s}) for s in (2, 3))
    assert plan_stored_video(Storage(), str(lr), x2, 1, str(hr))[1] == ""
    plan, error = plan_stored_video(Storage(), str(lr), x3, 1, str(hr))
    assert plan is None and error == f"reference {hr}: its frames are 64x48, not the input's 32x24 x3 = 96x72"
    plan, error = plan_stored_video(Storage(), str(lr), x2, 1, str(tmp_path / "missing.mp4"))
    assert plan is None and error.startswith(f"reference {tmp_path / 'missing.mp4'}: cannot open it: ")


def test_an_input_that_cannot_be_opened_fails_its_plan_only(tmp_path):
    spec = load_job_spec(None, {"input": str(tmp_path), "output": str(tmp_path / "out")})
    plan, error = plan_stored_video(Storage(), str(tmp_path / "gone.mp4"), spec, 1)
    assert plan is None and error.startswith("StorageError: ") and "no such file" in error


def test_segments_told_early_must_be_those_of_the_whole_plan(tmp_path):
    """A sharded scan that failed part way is redone serially; the segments told before then stand
    only if the whole plan holds them as told (same frames, seek points, timing)."""
    clip = make_clip(tmp_path / "long.mp4", frames=240, size=(64, 36), gop=12, scene_cut_at=[150])

    def scan(ranges: list[FrameRange]):
        for frames in ranges:
            yield scan_range(str(clip), frames, detect_scenes=True)

    *told, whole = plan_video_stream(str(clip), SegmentSpec(max_core_frames=4, range_frames=40), 2, scan_ranges=scan)
    assert told and _told_differently(told, whole) == ""
    other_rate = replace(whole, probe=replace(whole.probe, avg_rate=Fraction(30)))
    fewer = replace(whole, segments=whole.segments[1:])
    for changed in (other_rate, fewer):
        assert _told_differently(told, changed).startswith("its frames are not those its index lists")
