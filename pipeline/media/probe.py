"""Probe a video: exact frame count, per-frame pts and scene cuts from one full decode."""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, BinaryIO

import av
from av.container import InputContainer
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from .audio_timing import AudioTimestampCheck
from .colour import Colour, frame_colour, resolved
from .decode import Source, decoded_frames, open_source, video_stream
from .errors import MediaError
from .fixity import HashingReader
from .ranges import FrameScan, RangeScanner, ScanJoiner, ShardingFailed, index_ranges, small_rgb
from .scenes import ContentDetector

# A video whose decoded frames end this much before the duration its header states is truncated.
_TRUNCATION_SLACK_S = 0.5
# Demuxers whose stream durations come from an index written at the end, not from a bitrate
# guess (MPEG-TS, AVI): only there does "ends early" mean "cut off".
_HEADER_DURATION_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}


@dataclass(frozen=True)
class VideoProbe:
    n_frames: int
    width: int
    height: int
    time_base: Fraction
    pts: list[int]  # per frame, presentation order, in time_base
    pts_synthetic: bool  # the container gave no usable pts: pts come from the frame rate
    avg_rate: Fraction | None
    duration_s: float  # from the first frame's pts to the end of the last frame
    start_s: float  # pts of the first frame in seconds (audio is aligned to the same clock)
    pix_fmt: str
    codec: str
    rotation: int  # display rotation in degrees (metadata; frames are decoded unrotated)
    # At least half the first `range_frames` frames (the first planning range) are flagged interlaced:
    # decided on those, so that segments can be planned before the whole video is scanned.
    interlaced: bool
    field_order: str  # "progressive", "tff", "bff" (or "interlaced" when flagged without an order)
    sample_aspect_ratio: Fraction | None
    audio_streams: int
    subtitle_streams: int
    cuts: list[int]  # frame indices that start a new scene; never 0
    tagged_colour: Colour  # as the first frame states it (unspecified included)
    # Audio streams (by index) whose packets' timestamps do not increase: the stitch rebuilds them.
    audio_retimed: tuple[int, ...] = ()
    sha256: str | None = None  # of the whole source file
    # The start timecode the source states (HH:MM:SS:FF, ';' before the frames for drop-frame) and
    # where: "tmcd track", "video stream tag" or "container tag"; a malformed one is not carried,
    # and `timecode_source` says so ("malformed container tag '25:99'").
    timecode: str | None = None
    timecode_source: str | None = None
    # How the frames were scanned: "serial", "sharded: N ranges" (pipeline/media/ranges.py), or
    # "serial: <why the ranges could not serve>".
    planning: str = "serial"

    @property
    def colour(self) -> Colour:
        """The colour every frame is read with (untagged matrix and range resolved; see colour.py)."""
        return resolved(self.tagged_colour, self.height, av.VideoFormat(self.pix_fmt).is_rgb if self.pix_fmt else False)

    @property
    def decode_pts(self) -> list[int] | None:
        """The pts to hand to `decode_frames` (None makes it decode from the start)."""
        return None if self.pts_synthetic else self.pts


def probe_video(
    src: Source,
    *,
    detect_scenes: bool = True,
    scene_threshold: float = 27.0,
    min_scene_frames: int = 8,
    max_width: int | None = None,
    max_height: int | None = None,
    max_duration_s: float | None = None,
    scan_ranges: RangeScanner | None = None,
    range_frames: int = 750,
) -> VideoProbe:
    """Decode the whole video once; MediaError for anything that is not a complete, decodable video.

    The first decode error, or the first frame the decoder could only partly reconstruct,
    fails the probe (see `decoded_frames`): a damaged video fails here, before any work. It
    decodes without frame threads, which would drop an error in the stream's last packets.
    Size and duration limits (None: none) are checked first on what the container headers
    state, before any frame is decoded, so an oversized file costs only its header; and again
    on the decoded figures, for streams whose headers state no duration (raw H.264, some TS).
    The file's sha256 is taken from the bytes the decode reads (see HashingReader).

    With `scan_ranges`, the frames are first indexed by demuxing and, in ranges of at least
    `range_frames` frames, handed to it to decode (in parallel, by the caller's means); the probe
    is the same as the serial one's, and its `planning` says which way it went.
    """
    *_, probe = scan_video(
        src, detect_scenes=detect_scenes, scene_threshold=scene_threshold, min_scene_frames=min_scene_frames,
        max_width=max_width, max_height=max_height, max_duration_s=max_duration_s, scan_ranges=scan_ranges,
        range_frames=range_frames,
    )  # fmt: skip
    return probe  # type: ignore[return-value]


@dataclass(frozen=True)
class ScanProgress:
    """A sharded probe's findings so far. `head` is the video as far as planning needs it before
    every frame is decoded, all of it final: frame size, every frame's pts (from the index), time
    base, rate, colour, the interlace decision; its `cuts` are not filled in (nor its sha256).
    `cuts` are the scene cuts among the first `frames` frames, which are decoded and checked."""

    head: VideoProbe
    frames: int
    cuts: list[int]


def scan_video(
    src: Source,
    *,
    detect_scenes: bool = True,
    scene_threshold: float = 27.0,
    min_scene_frames: int = 8,
    max_width: int | None = None,
    max_height: int | None = None,
    max_duration_s: float | None = None,
    scan_ranges: RangeScanner | None = None,
    range_frames: int = 750,
) -> Iterator[ScanProgress | VideoProbe]:
    """`probe_video`, telling as it goes: with `scan_ranges`, a ScanProgress after each range (in
    order) once the index serves; the last item is the VideoProbe, or MediaError as probe_video.
    A sharded scan that fails part way scans the video serially from the start, so the progress
    told is of frames that decoded as indexed, not necessarily of the whole video's final plan."""
    with _readable(src) as raw:
        reader = HashingReader(raw)
        scanning = _Scanning(detect_scenes, scene_threshold, min_scene_frames, scan_ranges, range_frames)
        probe = yield from _probe(reader, scanning, max_width, max_height, max_duration_s)
        yield replace(probe, sha256=reader.sha256())


def frame_size(src: Source) -> tuple[int, int]:
    """(width, height) of the video stream as its header states it, nothing decoded; MediaError if
    the file does not open as a video."""
    with _readable(src) as raw, open_source(raw) as container:
        ctx = video_stream(container, frame_threads=False).codec_context
        return ctx.width, ctx.height


@contextmanager
def _readable(src: Source) -> Iterator[BinaryIO]:
    """A binary file object for `src` (a path is opened, a caller's file object stays open)."""
    if hasattr(src, "read"):
        src.seek(0)
        yield src  # type: ignore[misc]
        return
    if not os.path.exists(src):
        raise MediaError(f"cannot open: no such file {os.fspath(src)!r}")
    with open(src, "rb") as f:
        yield f


@contextmanager
def _opened(src: BinaryIO, limits: dict[str, Any]) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The container and its video stream, once the header's size and duration pass the limits."""
    with open_source(src) as container:
        stream = video_stream(container, frame_threads=False)
        _check_limits(
            stream.codec_context.width, stream.codec_context.height, _header_duration_s(container, stream), **limits
        )
        yield container, stream


@dataclass(frozen=True)
class _Scanning:
    detect_scenes: bool
    scene_threshold: float
    min_scene_frames: int
    scan_ranges: RangeScanner | None
    range_frames: int

    def detector(self) -> ContentDetector | None:
        return ContentDetector(self.scene_threshold, self.min_scene_frames) if self.detect_scenes else None


def _probe(
    src: BinaryIO,
    scanning: _Scanning,
    max_width: int | None,
    max_height: int | None,
    max_duration_s: float | None,
) -> Generator[ScanProgress, None, VideoProbe]:
    limits = {"max_width": max_width, "max_height": max_height, "max_duration_s": max_duration_s}
    scan, planning = None, "serial"
    if scanning.scan_ranges is not None:
        with _opened(src, limits) as (container, stream):
            scan, planning = yield from _sharded_scan(container, stream, scanning)
    with _opened(src, limits) as (container, stream):
        scan = scan or _scan(container, stream, scanning.detector(), scanning.range_frames)
        return _described(container, stream, scan, planning, scanning.range_frames, limits)


def _described(
    container: InputContainer,
    stream: VideoStream,
    scan: FrameScan,
    planning: str,
    head: int,
    limits: dict[str, Any] | None,
) -> VideoProbe:
    """The probe of a scan; with `limits`, the whole video's (checked complete and within them),
    else a sharded scan's head (ScanProgress), whose scan has every frame's pts from the index."""
    ctx = stream.codec_context
    stated_rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    synthetic = not _strictly_increasing(scan.pts)
    if synthetic:
        if not stated_rate:
            raise MediaError("frames have no usable timestamps and the stream states no frame rate")
        time_base, pts, last_duration = 1 / Fraction(stated_rate), list(range(len(scan.pts))), 1
    else:
        time_base, pts = Fraction(stream.time_base), [int(p) for p in scan.pts]  # type: ignore[arg-type]
        last_duration = scan.last_duration or (pts[-1] - pts[-2] if len(pts) > 1 else 1)
    rate = _average_rate(pts, time_base, stated_rate)
    start_s = float(pts[0] * time_base)
    duration_s = float((pts[-1] - pts[0] + last_duration) * time_base)
    if limits is not None:
        if not synthetic and container.format.name in _HEADER_DURATION_FORMATS:
            _check_complete(stream, start_s + duration_s)
        _check_limits(ctx.width, ctx.height, duration_s, **limits)
    interlaced = 2 * scan.interlaced >= min(len(pts), head)
    return VideoProbe(
        n_frames=len(pts),
        width=ctx.width,
        height=ctx.height,
        time_base=time_base,
        pts=pts,
        pts_synthetic=synthetic,
        avg_rate=rate,
        duration_s=duration_s,
        start_s=start_s,
        pix_fmt=ctx.pix_fmt or "",
        codec=ctx.name,
        rotation=scan.rotation,
        interlaced=interlaced,
        field_order=_field_order(ctx.field_order, interlaced),
        sample_aspect_ratio=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
        audio_streams=len(container.streams.audio),
        subtitle_streams=len(container.streams.subtitles),
        cuts=scan.cuts,
        tagged_colour=scan.colour,
        audio_retimed=scan.audio_retimed,
        planning=planning,
        **_timecode(container, stream, rate),
    )


_TIMECODE = re.compile(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)([:;.])(\d{2,3})")
_DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))  # where FFmpeg allows drop-frame


def _timecode(container: InputContainer, stream: VideoStream, rate: Fraction | None) -> dict[str, str | None]:
    """The start timecode: a `tmcd` track's (MOV/MP4), else the video stream's tag (Matroska),
    else the container's (MXF and others); tags are matched whatever their case. One the output
    could not carry (not HH:MM:SS:FF, a frame number past the rate, drop-frame at another rate
    than 29.97 or 59.94) is named, not carried."""
    places = [("tmcd track", data.metadata) for data in container.streams.data]
    places += [("video stream tag", stream.metadata), ("container tag", container.metadata)]
    for place, tags in places:
        value = next((v.strip() for k, v in tags.items() if k.lower() == "timecode"), None)
        if value is None:
            continue
        found = _TIMECODE.fullmatch(value)
        frames_ok = found is not None and (rate is None or int(found[5]) < math.ceil(rate))
        drop_ok = found is not None and (found[4] == ":" or rate in _DROP_FRAME_RATES)
        if frames_ok and drop_ok:
            return {"timecode": value, "timecode_source": place}
        return {"timecode": None, "timecode_source": f"malformed {place} {value!r}"}
    return {"timecode": None, "timecode_source": None}


def output_timecode(timecode: str | None, frames_per_frame: int) -> str | None:
    """The start timecode the output carries: the source's, its frame number counted at the output's
    rate (field rate: 10:00:00:12 at 25 fps is 10:00:00:24 at 50; drop-frame stays drop-frame)."""
    found = _TIMECODE.fullmatch(timecode) if timecode else None
    if found is None or frames_per_frame == 1:
        return timecode
    frame = int(found[5]) * frames_per_frame
    return f"{found[1]}:{found[2]}:{found[3]}{found[4]}{frame:0{len(found[5])}d}"


# AVFieldOrder: 1 progressive; 2 and 4 code the top field first, 3 and 5 the bottom one.
_FIELD_ORDERS = {1: "progressive", 2: "tff", 3: "bff", 4: "tff", 5: "bff"}


def _field_order(order: int, interlaced: bool) -> str:
    """The stream's field order; the frames' flags decide when the stream states none (or progressive
    while most frames say interlaced, as some MP4s do)."""
    name = _FIELD_ORDERS.get(int(order or 0), "")
    if interlaced:
        return name if name in ("tff", "bff") else "interlaced"
    return "progressive"


def _check_limits(
    width: int,
    height: int,
    duration_s: float | None,
    *,
    max_width: int | None,
    max_height: int | None,
    max_duration_s: float | None,
) -> None:
    """MediaError when the stored frame size or the duration is above a limit (None: no limit;
    a width, height or duration of 0/None is unknown and passes)."""
    if (max_width and width > max_width) or (max_height and height > max_height):
        if max_width and max_height:
            limit = f"{max_width}x{max_height}"
        else:
            limit = f"of width {max_width}" if max_width else f"of height {max_height}"
        raise MediaError(f"{width}x{height} is above the limit {limit}")
    if max_duration_s and duration_s and duration_s > max_duration_s:
        raise MediaError(f"duration {duration_s:.2f} s is above the limit {max_duration_s:g} s")


def _header_duration_s(container: InputContainer, stream: VideoStream) -> float | None:
    """The duration the headers state: the video stream's own, else the file's (Matroska)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _sharded_scan(
    container: InputContainer, stream: VideoStream, scanning: _Scanning
) -> Generator[ScanProgress, None, tuple[FrameScan | None, str]]:
    """The frames scanned range by range (ranges.py), telling the progress after each; or None and
    why it fell back to serial ("serial" alone for a video shorter than two ranges: nothing to share)."""
    audio = AudioTimestampCheck(list(container.streams.audio))
    ranges = index_ranges(container, stream, audio, scanning.range_frames)
    if isinstance(ranges, str):
        return None, f"serial: {ranges}"
    if len(ranges) < 2:
        return None, "serial"
    joiner = ScanJoiner(scanning.detector(), scanning.range_frames, audio.broken)
    indexed: list[int | None] = [pts for frames in ranges for pts in frames.pts]
    head: VideoProbe | None = None
    try:
        for scan in scanning.scan_ranges(ranges):  # type: ignore[misc]
            joined = joiner.add(scan)
            if head is None:  # the first range holds the frames that decide what the head needs
                whole = replace(joined, pts=indexed, cuts=[])
                head = _described(container, stream, whole, "sharded", scanning.range_frames, None)
            yield ScanProgress(head, len(joined.pts), list(joined.cuts))
    except ShardingFailed as exc:
        return None, f"serial: {exc}"
    if len(joiner.scan.pts) != len(indexed):
        return None, "serial: the ranges did not cover the video"
    return joiner.scan, f"sharded: {len(ranges)} ranges"


def _scan(container: InputContainer, stream: VideoStream, detector: ContentDetector | None, head: int) -> FrameScan:
    scan = FrameScan()
    reformatter = VideoReformatter()
    audio = AudioTimestampCheck(list(container.streams.audio))
    for index, frame in enumerate(decoded_frames(container, stream, audio)):
        if index == 0:
            scan.rotation = int(frame.rotation)
            scan.colour = frame_colour(frame)
        scan.pts.append(frame.pts)
        scan.last_duration = frame.duration or 0
        if index < head:
            scan.interlaced += frame.interlaced_frame
        if detector is not None and detector.push(small_rgb(reformatter, frame)):
            scan.cuts.append(index)
    if not scan.pts:
        raise MediaError("no decodable video frames")
    scan.audio_retimed = audio.broken
    return scan


def _average_rate(pts: list[int], time_base: Fraction, stated: Fraction | None) -> Fraction | None:
    """The stated rate when the frames bear it out (it is exact, e.g. 30000/1001), else the measured one."""
    if len(pts) < 2:
        return Fraction(stated) if stated else None
    measured = (len(pts) - 1) / ((pts[-1] - pts[0]) * time_base)
    if stated and abs(stated / measured - 1) < 0.01:
        return Fraction(stated)
    return measured.limit_denominator(1001)


def _strictly_increasing(pts: list[int | None]) -> bool:
    return all(p is not None for p in pts) and all(a < b for a, b in itertools.pairwise(pts))  # type: ignore[operator]


def _check_complete(stream: VideoStream, end_s: float) -> None:
    """Compare where the decoded frames end with where the header says the stream ends
    (a cut-off download decodes cleanly up to its cut, so only this comparison notices it)."""
    stated = _stated_end_s(stream)
    if stated is not None and end_s < stated - _TRUNCATION_SLACK_S:
        raise MediaError(f"truncated: frames end at {end_s:.2f} s but the header says {stated:.2f} s")


def _stated_end_s(stream: VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    # Matroska stores a stream's end only as a "DURATION" tag (HH:MM:SS.fraction).
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", tag or "")
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
