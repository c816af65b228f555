"""Segment planning: cut a video into overlapping segments that never cross a scene cut, and make
each segment's record, the row the stages take (`segment_records`).

A segment writes its *core* frames and decodes *context* frames on each side (inside its scene,
clipped at the scene's edges) so every written frame sees the temporal context the strong
model needs: with context >= the model's receptive radius R the stitch is seamless.

Segments are planned as the scan goes (`SegmentPlanner`): a video whose ranges are scanned in
parallel hands its first segments on while the rest of it is still being scanned
(`plan_video_stream`), and the plan is the one the whole scan at once would give.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import BinaryIO

from pipeline.config import JobSpec, LimitsSpec, SegmentSpec
from pipeline.errors import PssrError
from pipeline.media import MediaError, Source, VideoProbe, deep_frames, encoded_size, probe_video
from pipeline.media.decode import deinterlace_frames, frames_per_frame
from pipeline.media.probe import ScanProgress, scan_video
from pipeline.media.ranges import RangeScanner
from pipeline.naming import chunk_uri
from pipeline.segment import SegmentRecord


@dataclass(frozen=True)
class Segment:
    index: int
    scene_index: int
    core_start: int  # frame indices, end exclusive
    core_end: int
    context_start: int
    context_end: int

    @property
    def frames(self) -> int:
        return self.core_end - self.core_start

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# A scene longer than this many segments and one more is planned in blocks of this many full
# segments, each final once the scan is a segment past it, so a long scene's first segments go on
# while the rest is scanned; a shorter scene (or a long one's last block) is split into equal
# segments, rather than N, N, ..., remainder: a tiny last segment's context would dominate its cost.
BLOCK_SEGMENTS = 8


class SegmentPlanner:
    """Plans segments as a scan finds frames and cuts: `add` takes how many frames are scanned and
    the cuts among them (cuts are the first frames of new scenes), and gives the segments nothing
    later can change; `finish` gives the rest. Told in any steps, the plan is the same."""

    def __init__(self, max_core_frames: int, context_frames: int) -> None:
        if max_core_frames < 1 or context_frames < 0:
            raise ValueError("max_core_frames must be >= 1 and context_frames >= 0")
        self.core, self.context = max_core_frames, context_frames
        self.block = BLOCK_SEGMENTS * max_core_frames
        self.segments: list[Segment] = []
        self._scene = (0, 0)  # the index and first frame of the scene being planned
        self._next = 0  # its first frame in no segment yet

    def add(self, scanned: int, cuts: Iterable[int]) -> list[Segment]:
        done = len(self.segments)
        for cut in sorted(c for c in set(cuts) if self._scene[1] < c < scanned):
            self._close_scene(cut)
        # The open scene runs at least to `scanned`: blocks far enough before that are final.
        while scanned > self._next + self.block + max(self.core, self.context):
            self._split(self._next + self.block, None)
        return self.segments[done:]

    def finish(self, n_frames: int, cuts: Iterable[int]) -> list[Segment]:
        if n_frames < 1:
            raise ValueError("a video needs at least one frame to plan")
        done = len(self.segments)
        self.add(n_frames, cuts)
        self._close_scene(n_frames)
        return self.segments[done:]

    def _close_scene(self, end: int) -> None:
        while end - self._next > self.block + self.core:
            self._split(self._next + self.block, end)
        self._split(end, end)
        self._scene = (self._scene[0] + 1, end)

    def _split(self, stop: int, scene_end: int | None) -> None:
        """Near-equal segments over [next, stop), in a scene that ends at `scene_end` (None: far enough
        past `stop` for every segment's context)."""
        start, (scene_index, scene_start) = self._next, self._scene
        length = stop - start
        pieces = -(-length // self.core)
        for piece in range(pieces):
            core_start = start + piece * length // pieces
            core_end = start + (piece + 1) * length // pieces
            context_end = core_end + self.context
            self.segments.append(
                Segment(
                    index=len(self.segments),
                    scene_index=scene_index,
                    core_start=core_start,
                    core_end=core_end,
                    context_start=max(scene_start, core_start - self.context),
                    context_end=context_end if scene_end is None else min(scene_end, context_end),
                )
            )
        self._next = stop


def plan_segments(n_frames: int, cuts: list[int], max_core_frames: int, context_frames: int) -> list[Segment]:
    """The whole video's segments at once (SegmentPlanner)."""
    return SegmentPlanner(max_core_frames, context_frames).finish(n_frames, cuts)


@dataclass(frozen=True)
class VideoPlan:
    probe: VideoProbe  # without per-frame pts: a plan stays small whatever the video's length
    segments: list[Segment]
    context_frames: int
    # pts of the first and last decoded frame of each segment, for seeking; None when the
    # source has no reliable pts (then frames are decoded from the start and timed by index).
    seek_pts: list[tuple[int, int]] | None
    # Benchmark mode: pts of each segment's first and last *core* frame in the HR reference, for
    # seeking there; None without a reference, or when the reference has no reliable pts.
    reference_seek_pts: list[tuple[int, int]] | None = None
    # What bwdif does to the frames (decode.deinterlace_frames): at field rate ("fields") the
    # segments count output frames, two per source frame, and seek_pts are the source frames'.
    deinterlace: str | None = None
    # False for the segments a plan_video_stream tells before the scan ends (their probe is the
    # scan's head, ScanProgress); True for a whole video's plan.
    complete: bool = True


class ReferenceMismatch(PssrError):
    """The HR reference of a video cannot serve: unreadable, or not the input's frames at the output size."""


def check_reference(probe: VideoProbe, reference: VideoProbe, scale: int) -> None:
    """ReferenceMismatch naming the first way the reference does not fit its input: frame size
    (input x scale), frame count, or frame times (from each video's first frame; container
    rounding is allowed, a quarter of a frame is not: frames must pair up by index)."""
    want = (probe.width * scale, probe.height * scale)
    if (reference.width, reference.height) != want:
        raise ReferenceMismatch(
            f"its frames are {reference.width}x{reference.height}, not the input's "
            f"{probe.width}x{probe.height} x{scale} = {want[0]}x{want[1]}"
        )
    if reference.n_frames != probe.n_frames:
        raise ReferenceMismatch(f"it has {reference.n_frames} frames, the input {probe.n_frames}")
    slack = 0.25 / float(probe.avg_rate) if probe.avg_rate else 0.0
    for i, (ours, theirs) in enumerate(zip(probe.pts, reference.pts)):
        t_in = float((ours - probe.pts[0]) * probe.time_base)
        t_ref = float((theirs - reference.pts[0]) * reference.time_base)
        if abs(t_in - t_ref) > slack:
            raise ReferenceMismatch(f"frame {i} is at {t_ref:.3f} s, in the input at {t_in:.3f} s (from the start)")


def _reference_seek_pts(
    probe: VideoProbe, reference: Source, scale: int, segments: list[Segment]
) -> list[tuple[int, int]] | None:
    """Probe and check the HR reference; the reference pts of each segment's core, for seeking."""
    try:
        ref = probe_video(reference, detect_scenes=False)
    except MediaError as exc:
        raise ReferenceMismatch(str(exc)) from exc
    check_reference(probe, ref, scale)
    pts = ref.decode_pts
    return [(pts[s.core_start], pts[s.core_end - 1]) for s in segments] if pts else None


def plan_video(
    source: str | BinaryIO,
    spec: SegmentSpec,
    temporal_radius: int,
    limits: LimitsSpec | None = None,
    reference: Source | None = None,
    scale: int = 1,
    scan_ranges: RangeScanner | None = None,
    deinterlace: tuple[str, str] = ("never", "frame"),
) -> VideoPlan:
    """Probe a source (one decode pass, scene detection included) and plan its segments.

    Context defaults to the strong model's receptive radius: the least that keeps the stitch seamless.
    A video above `limits` fails (MediaError) on its header, before any frame is decoded. With
    an HR `reference` (benchmark mode), that is probed too and must fit the input upscaled by
    `scale` (ReferenceMismatch otherwise), so a mismatch fails the video before any work. With
    `scan_ranges` the probe's decode is shared out by ranges (pipeline/media/ranges.py).
    `deinterlace` is JobSpec's (deinterlace, deinterlace_rate): at field rate the plan counts
    output frames, two per source frame (a scene cut at source frame c cuts at 2c).
    """
    *_, plan = plan_video_stream(source, spec, temporal_radius, limits, reference, scale, scan_ranges, deinterlace)
    return plan


def plan_video_stream(
    source: str | BinaryIO,
    spec: SegmentSpec,
    temporal_radius: int,
    limits: LimitsSpec | None = None,
    reference: Source | None = None,
    scale: int = 1,
    scan_ranges: RangeScanner | None = None,
    deinterlace: tuple[str, str] = ("never", "frame"),
) -> Iterator[VideoPlan]:
    """`plan_video`, told as it goes: with `scan_ranges`, no reference and a video its index lets
    share out, a VideoPlan (`complete` False) of the segments that became final after each range,
    as soon as they are; the last item is the whole video's plan (every segment, those told before
    included: a sharded scan that fails part way is redone serially, and a caller checks that what
    it told before is what the whole plan holds)."""
    context = temporal_radius if spec.context_frames is None else spec.context_frames
    setting, rate = deinterlace
    planner = SegmentPlanner(spec.max_core_frames, context)
    found: ScanProgress | VideoProbe | None = None
    for found in scan_video(
        source,
        detect_scenes=spec.detect_scenes,
        scene_threshold=spec.scene_threshold,
        min_scene_frames=spec.min_scene_frames,
        scan_ranges=scan_ranges,
        range_frames=spec.range_frames,
        **(limits or LimitsSpec()).model_dump(),
    ):
        if isinstance(found, ScanProgress) and reference is None:
            frames = deinterlace_frames(setting, found.head.interlaced, rate)
            k = frames_per_frame(frames)
            told = planner.add(found.frames * k, [c * k for c in found.cuts])
            if told:
                yield _video_plan(found.head, told, context, frames, complete=False)
    probe = found
    assert isinstance(probe, VideoProbe)
    frames = deinterlace_frames(setting, probe.interlaced, rate)
    k = frames_per_frame(frames)
    segments = plan_segments(probe.n_frames * k, [c * k for c in probe.cuts], spec.max_core_frames, context)
    if reference is not None and k > 1:
        raise ReferenceMismatch("field-rate output has twice the input's frames: a reference cannot pair with them")
    reference_seek = _reference_seek_pts(probe, reference, scale, segments) if reference is not None else None
    yield replace(_video_plan(probe, segments, context, frames, complete=True), reference_seek_pts=reference_seek)


def _video_plan(
    probe: VideoProbe, segments: list[Segment], context: int, frames: str | None, complete: bool
) -> VideoPlan:
    """The plan of these segments, with their seek points; its probe without per-frame pts (a plan
    stays small whatever the video's length)."""
    k, pts = frames_per_frame(frames), probe.decode_pts
    seek_pts = [(pts[s.context_start // k], pts[(s.context_end - 1) // k]) for s in segments] if pts else None
    return VideoPlan(replace(probe, pts=[]), segments, context, seek_pts, None, frames, complete)


def output_size(probe: VideoProbe, spec: JobSpec) -> tuple[int, int]:
    """Scaled size, as the encoder writes it (4:2:0 codecs round odd sizes up)."""
    return encoded_size(probe.width * spec.scale, probe.height * spec.scale, spec.encode.codec, spec.encode.pix_fmt)


def segment_records(
    plan: VideoPlan, spec: JobSpec, *, video_key: str, input_uri: str, reference_uri: str | None, staging: str
) -> list[SegmentRecord]:
    """The records of a planned video's segments, as the decode stage takes them: where each
    segment's frames are, how they are decoded and encoded (the same for every segment, so the
    chunks agree), and where its chunk goes under `staging`."""
    probe = plan.probe
    k = frames_per_frame(plan.deinterlace)  # at field rate: twice the rate, in half the time base
    rate, sar, colour = probe.avg_rate * k if probe.avg_rate else None, probe.sample_aspect_ratio, probe.colour
    time_base = probe.time_base / k
    hr_width, hr_height = output_size(probe, spec)
    absent = [None] * len(plan.segments)
    return [
        SegmentRecord(
            video_key=video_key, input_uri=input_uri, reference_uri=reference_uri,
            segment_index=segment.index, segment_count=len(plan.segments), scene_index=segment.scene_index,
            core_start=segment.core_start, core_end=segment.core_end,
            context_start=segment.context_start, context_end=segment.context_end,
            seekable=seek is not None, seek_first_pts=seek[0] if seek else 0, seek_last_pts=seek[1] if seek else 0,
            ref_seekable=ref_seek is not None,
            ref_seek_first_pts=ref_seek[0] if ref_seek else 0, ref_seek_last_pts=ref_seek[1] if ref_seek else 0,
            video_start_s=probe.start_s,  # time codes count from the first frame
            time_base_num=time_base.numerator, time_base_den=time_base.denominator,
            rate_num=rate.numerator if rate else 0, rate_den=rate.denominator if rate else 0,
            sar_num=sar.numerator if sar else 0, sar_den=sar.denominator if sar else 0,
            chunk_uri=chunk_uri(staging, segment.index, spec.encode.container_format),
            lr_width=probe.width, lr_height=probe.height, hr_width=hr_width, hr_height=hr_height,
            # Deep when either output is: a 10-bit access copy beside an 8-bit master keeps its bits too.
            frames_16bit=any(deep_frames(e.codec, e.pix_fmt) for e in (spec.encode, spec.access) if e is not None),
            deinterlace=plan.deinterlace,
            colour_primaries=colour.primaries, colour_transfer=colour.transfer,
            colour_matrix=colour.matrix, colour_range=colour.range,
        )
        for segment, seek, ref_seek in zip(plan.segments, plan.seek_pts or absent, plan.reference_seek_pts or absent)
    ]  # fmt: skip
