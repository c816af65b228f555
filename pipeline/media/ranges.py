"""Sharded planning: a video's frames indexed by demuxing alone (packet timestamps and keyframe
flags, nothing decoded), cut at keyframes into ranges that separate workers decode at once, and
the ranges' findings joined into the scan a serial probe makes (probe.py), to the same frames,
cuts and flags.

A range decodes from its keyframe up to the next range's first frame. A scene cut is a property
of a frame and the one before it, so a range measures each frame's change against the frame
before it, and the join measures the change across each range edge from the small frames the two
ranges hand back: no range reads past its edge, and the cut rule (which depends on the last cut)
runs once, in order, over every change. Each range checks that it decoded exactly the frames the
index lists for it; where it did not (a broken index, an open GOP that does not decode from its
keyframe, a decode error), the probe falls back to a serial scan and says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import av
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from .audio_timing import AudioTimestampCheck
from .colour import Colour, frame_colour
from .decode import Source, decoded_frames, open_source, reformat, video_stream
from .errors import MediaError, ffmpeg_reason
from .scenes import DETECT_SIZE, ContentDetector, frame_change, hsv

# Ranges a video is cut into at most: plenty of parallelism, while each range's own reads (an MP4's
# index, read by every range that opens the file: megabytes for a long film) stay a small share.
MAX_RANGES = 64


class ShardingFailed(MediaError):
    """A video's ranges do not add up to its frames: its probe scans it serially instead."""


@dataclass
class FrameScan:
    """What a probe learns by decoding every frame (serially, or by joining ranges)."""

    pts: list[int | None] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    interlaced: int = 0  # frames flagged interlaced among the first `head` (probe.py decides on those)
    rotation: int = 0
    last_duration: int = 0
    colour: Colour = field(default_factory=Colour)
    audio_retimed: tuple[int, ...] = ()


@dataclass(frozen=True)
class FrameRange:
    """Frames [first, first + len(pts)) in presentation order, starting at a keyframe."""

    index: int
    first: int
    pts: tuple[int, ...]
    seek_dts: int | None  # the keyframe's decode time, to seek to; None for the first range (read from the start)
    end_pts: int | None  # the next range's first frame (None for the last range)


@dataclass
class RangeScan:
    pts: list[int]
    changes: list[float | None]  # each frame's scene change against the one before; None for the range's first
    first_hsv: np.ndarray | None  # the first and last frames as `scenes.hsv` of the detection size
    last_hsv: np.ndarray | None
    interlaced: list[bool]  # each frame's flag
    rotation: int
    colour: Colour
    last_duration: int


# Scans ranges (in parallel, by the caller's means) and gives their findings in range order, each
# as soon as it and those before it are done, so planning can go on while later ranges are scanned.
RangeScanner = Callable[[list[FrameRange]], Iterable[RangeScan]]


def small_rgb(reformatter: VideoReformatter, frame: VideoFrame) -> np.ndarray:
    """The frame at the scene detector's size (AREA averages whole pixel blocks: cheap and alias-free)."""
    width, height = DETECT_SIZE
    return reformat(reformatter, frame, width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()


def index_ranges(
    container: InputContainer, stream: VideoStream, audio: AudioTimestampCheck, range_frames: int
) -> list[FrameRange] | str:
    """Demux the whole file once (feeding `audio` its packets) and cut the video's frames into
    ranges of at least `range_frames` frames (more, after the first, for a video of over MAX_RANGES
    of them), each starting at a keyframe; or, where the index cannot be trusted to do that, the
    reason (then the video is scanned serially)."""
    packets: list[tuple[int | None, int | None, bool]] = []
    try:
        for packet in container.demux(stream, *audio.streams):
            if packet.stream.index != stream.index:
                audio.see(packet)
            elif packet.size:
                packets.append((packet.pts, packet.dts, bool(packet.is_keyframe)))
    except av.error.FFmpegError as exc:  # the serial scan names the fault as it always has
        return f"demuxing failed: {ffmpeg_reason(exc)}"
    if any(pts is None for pts, _, _ in packets):
        return "video packets without timestamps"
    order = sorted(pts for pts, _, _ in packets)  # type: ignore[type-var]
    if any(a == b for a, b in itertools.pairwise(order)):
        return "video packets sharing a timestamp"
    position = {pts: i for i, pts in enumerate(order)}
    keyframes = sorted((position[pts], dts) for pts, dts, key in packets if key and dts is not None)
    if not any(frame > 0 for frame, _ in keyframes):
        return "no keyframe after the first frame"
    # The first range holds `range_frames` whatever the length (the planning task scans it itself,
    # and a long video's first segments wait for it); the others share out the rest.
    size = max(range_frames, -(-(len(order) - range_frames) // (MAX_RANGES - 1)))
    starts: list[tuple[int, int | None]] = [(0, None)]
    for frame, dts in keyframes:
        least = range_frames if len(starts) == 1 else size
        if frame - starts[-1][0] >= least and len(order) - frame >= size // 2:
            starts.append((frame, dts))
    bounds = [*starts, (len(order), None)]
    return [
        FrameRange(
            index=i,
            first=first,
            pts=tuple(order[first:end]),
            seek_dts=dts,
            end_pts=order[end] if end < len(order) else None,
        )
        for i, ((first, dts), (end, _)) in enumerate(itertools.pairwise(bounds))
    ]


def scan_range(src: Source, frames: FrameRange, detect_scenes: bool) -> RangeScan:
    """Decode one range and measure its frames; ShardingFailed when they are not exactly the
    frames the index listed (or do not decode cleanly from the range's keyframe)."""
    with open_source(src) as container:
        stream = video_stream(container, frame_threads=False)
        if frames.seek_dts is not None:
            container.seek(frames.seek_dts, stream=stream, backward=True, any_frame=False)
        first_pts, reformatter = frames.pts[0], VideoReformatter()
        scan = RangeScan([], [], None, None, [], 0, Colour(), 0)
        try:
            for frame in _range_frames(container, stream, first_pts, frames.end_pts):
                if not scan.pts:
                    scan.rotation, scan.colour = int(frame.rotation), frame_colour(frame)
                scan.pts.append(frame.pts)
                scan.interlaced.append(bool(frame.interlaced_frame))
                scan.last_duration = frame.duration or 0
                if detect_scenes:
                    current = hsv(small_rgb(reformatter, frame))
                    if scan.last_hsv is None:
                        scan.first_hsv = current
                        scan.changes.append(None)
                    else:
                        scan.changes.append(frame_change(scan.last_hsv, current))
                    scan.last_hsv = current
        except MediaError as exc:
            raise ShardingFailed(f"range {frames.index} (from frame {frames.first}): {exc}") from exc
    if tuple(scan.pts) != frames.pts:
        raise ShardingFailed(
            f"range {frames.index} (from frame {frames.first}) decoded {len(scan.pts)} frames, "
            f"the index lists {len(frames.pts)} there"
        )
    return scan


def _range_frames(
    container: InputContainer, stream: VideoStream, first_pts: int, end_pts: int | None
) -> Iterator[VideoFrame]:
    """The frames with first_pts <= pts < end_pts, checked as a serial probe checks them."""
    for frame in decoded_frames(container, stream, from_pts=first_pts):
        if end_pts is not None and frame.pts >= end_pts:
            return
        yield frame


class ScanJoiner:
    """Joins the ranges' findings, in range order, into the scan a serial probe would have made of
    the frames so far: the same pts, cuts (the detector's rule runs once, in order, over every
    change) and the interlace flags among the first `head` frames."""

    def __init__(self, detector: ContentDetector | None, head: int, audio_retimed: tuple[int, ...]) -> None:
        self.detector, self.head = detector, head
        self.scan = FrameScan(audio_retimed=audio_retimed)
        self._last: RangeScan | None = None

    def add(self, scan: RangeScan) -> FrameScan:
        joined, previous = self.scan, self._last
        if previous is None:
            joined.rotation, joined.colour = scan.rotation, scan.colour
        if self.detector is not None:
            changes = list(scan.changes)
            if previous is not None:  # the change across the edge, which neither range could measure
                changes[0] = frame_change(previous.last_hsv, scan.first_hsv)  # type: ignore[arg-type]
            joined.cuts += [
                len(joined.pts) + i for i, change in enumerate(changes) if self.detector.push_change(change)
            ]
        joined.interlaced += sum(scan.interlaced[: max(0, self.head - len(joined.pts))])
        joined.pts += scan.pts
        joined.last_duration = scan.last_duration
        self._last = scan
        return joined
