"""Open sources (local paths or seekable file objects, e.g. S3 bodies) and decode frame ranges."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from itertools import chain
from typing import BinaryIO, NamedTuple

import av
import av.filter
import numpy as np
from av.container import InputContainer
from av.stream import Disposition
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from .audio_timing import AudioTimestampCheck
from .colour import Colour, frame_colour, resolved
from .errors import MediaError, ffmpeg_reason

Source = str | os.PathLike[str] | BinaryIO


@contextmanager
def open_source(src: Source) -> Iterator[InputContainer]:
    """Open a path or a seekable binary file object for reading; MediaError if FFmpeg cannot."""
    if _is_empty(src):
        raise MediaError("cannot open: empty file (0 bytes)")
    try:
        container = av.open(src if hasattr(src, "read") else os.fspath(src), "r")
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot open: {ffmpeg_reason(exc)}") from exc
    try:
        yield container
    finally:
        container.close()


def _is_empty(src: Source) -> bool:
    if hasattr(src, "read"):
        src.seek(0, os.SEEK_END)
        size = src.tell()
        src.seek(0)  # PyAV reads from the current position; a reused object must start over
        return size == 0
    return os.path.isfile(src) and os.path.getsize(src) == 0


def video_stream(container: InputContainer, frame_threads: bool = True) -> VideoStream:
    """The first real video stream, set up for threaded, strict decoding (cover art in audio
    files is a video stream too, but not a video).

    By default FFmpeg's decoders conceal damaged data (they paint over it from neighbouring
    pixels and frames) and go on: a file with a few bad packets would upscale into smeared
    frames without a word. `err_detect=explode` turns every error a decoder detects into an
    exception instead, which `decoded_frames` reports with the frame index.

    With frame threads, an error in one of the last packets (those still in the threads when
    the stream ends) is dropped while draining, and so are its frames: a reader that must see
    every error (the probe) passes `frame_threads=False` (slice threads only).
    """
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            stream.thread_type = "AUTO" if frame_threads else "SLICE"
            stream.codec_context.options = {"err_detect": "explode"}
            return stream
    raise MediaError("no video stream")


class Decoded(NamedTuple):
    frames: np.ndarray  # RGB (T, H, W, 3): uint8, or uint16 (0..65535) when decoded deep
    pts: list[int | None]  # as the decoder gave them (None where the container has none)


# bwdif, as the pipeline runs it, field order from each frame's flags (top field first when a frame
# has none): one output frame per input frame (frame rate and timing kept), or one per field
# (field rate: twice the frames, at twice the rate).
BWDIF = "bwdif=mode={mode}:parity=auto:deint={deint}"
# Which frames, and how many out per frame in: those flagged interlaced, or every one; at field
# rate every frame, so that each gives two (bwdif passes a progressive frame on once).
DEINTERLACE = {
    "interlaced": ("send_frame", "interlaced"),
    "all": ("send_frame", "all"),
    "fields": ("send_field", "all"),
}


def deinterlace_frames(setting: str, interlaced: bool, rate: str = "frame") -> str | None:
    """What bwdif does (`decode_frames`): "interlaced" (the frames flagged so) for a source flagged
    interlaced under `auto`, "all" under `always`, "fields" for either at field `rate`; None otherwise."""
    if setting == "always" or (setting == "auto" and interlaced):
        return "fields" if rate == "field" else ("all" if setting == "always" else "interlaced")
    return None


def frames_per_frame(deinterlace: str | None) -> int:
    """Output frames per source frame: 2 at field rate, else 1."""
    return 2 if deinterlace == "fields" else 1


def deinterlace_mode(frames: str | None) -> str | None:
    """The filter as it ran, for manifests and provenance."""
    if frames is None:
        return None
    mode, deint = DEINTERLACE[frames]
    return BWDIF.format(mode=mode, deint=deint)


class _SeekMiss(Exception):
    """Seeking did not land where it can be trusted: decode from the start instead."""


def decode_frames(
    src: Source,
    start: int,
    stop: int,
    pts_range: tuple[int, int] | None = None,
    *,
    deep: bool = False,
    colour: Colour | None = None,
    deinterlace: str | None = None,
) -> Decoded:
    """RGB frames start..stop-1 (presentation order) at the stored size, and their pts.

    With `pts_range` (the pts of frames `start` and `stop - 1` from `probe_video`, only when
    not synthetic: two numbers, whatever the video's length) it seeks to a keyframe before
    `start`; otherwise, or if seeking does not land exactly there, it decodes from the
    beginning. Both give the same frames as one sequential decode.

    `deep` gives uint16 RGB (for outputs above 8 bits: a 10-bit source keeps its precision).
    `colour` is the source's resolved description (`colour.resolved`, from the probe): every frame
    is converted with it; None reads each frame's own tags. `deinterlace` ("interlaced": the
    frames flagged so; "all"; "fields": every frame, a frame per field) runs FFmpeg's bwdif over
    the frames before conversion; it reads one frame each side of the range, so a range gives the
    same frames as a whole-video pass. At field rate the range's frames come two per source frame,
    timed in half the stream's time base (bwdif's own timing).
    """
    if not 0 <= start < stop:
        raise ValueError(f"bad frame range [{start}, {stop})")
    if deinterlace is not None and deinterlace not in DEINTERLACE:
        raise ValueError(f"deinterlace must be one of {sorted(DEINTERLACE)}, got {deinterlace!r}")
    pad = 1 if deinterlace else 0  # bwdif builds frame t from frames t-1, t and t+1
    if pts_range is not None and start > 0:
        with open_source(src) as container:
            stream = video_stream(container)
            try:
                frames = _frames_after_seek(container, stream, stop - start, pts_range, pad)
                return _collect(frames, stream, stop - start, deep, colour, deinterlace)
            except (_SeekMiss, MediaError):
                pass  # the sequential pass below reports the exact failing frame
    with open_source(src) as container:
        stream = video_stream(container)
        return _collect(
            _frames_sequential(container, stream, start, stop, pad), stream, stop - start, deep, colour, deinterlace
        )


# A decoded frame, and whether it is one of the range's (False: a neighbour read for bwdif).
_Tagged = tuple[av.VideoFrame, bool]


def _collect(
    frames: Iterator[_Tagged],
    stream: VideoStream,
    count: int,
    deep: bool,
    colour: Colour | None,
    deinterlace: str | None,
) -> Decoded:
    """Convert the range's frames into one array, through bwdif first when asked."""
    count *= frames_per_frame(deinterlace)
    out = np.empty((count, stream.height, stream.width, 3), np.uint16 if deep else np.uint8)
    pts: list[int | None] = []
    reformatter = VideoReformatter()
    rgb = "rgb48le" if deep else "rgb24"
    images = _Bwdif(deinterlace, frames) if deinterlace else frames
    for frame, wanted in images:
        if not wanted:
            continue
        if (frame.height, frame.width) != out.shape[1:3]:
            raise MediaError(f"frame size changes mid-stream ({frame.width}x{frame.height})")
        out[len(pts)] = reformat(reformatter, frame, colour, format=rgb).to_ndarray()
        pts.append(frame.pts)
    return Decoded(out, pts)


class _Bwdif:
    """(frame, wanted) pairs through FFmpeg's bwdif filter, as an iterator of the same pairs.

    It gives its frames in order, a frame late: one per frame in send_frame mode, which bwdif
    times in half its input's time base (for field rate), so each frame gets back its own pts; two
    per frame in send_field mode, timed by bwdif in that half time base (the second field half a
    frame after the first)."""

    def __init__(self, deinterlace: str, frames: Iterator[_Tagged]) -> None:
        self.deinterlace, self.frames = deinterlace, frames
        self.per_frame = frames_per_frame(deinterlace)
        self.waiting: deque[tuple[bool, int | None]] = deque()  # (wanted, pts) of each output still to come

    def __iter__(self) -> Iterator[_Tagged]:
        graph = None
        for frame, wanted in self.frames:
            if graph is None:
                graph = self._graph(frame)
            self.waiting.extend([(wanted, frame.pts)] * self.per_frame)
            graph.push(frame)
            yield from self._drain(graph)
        if graph is not None:
            graph.push(None)
            yield from self._drain(graph)

    def _graph(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base or Fraction(1)
        )
        name, args = deinterlace_mode(self.deinterlace).split("=", 1)  # type: ignore[union-attr]
        bwdif, sink = graph.add(name, args), graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        return graph

    def _drain(self, graph: av.filter.Graph) -> Iterator[_Tagged]:
        while True:
            try:
                frame = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            wanted, pts = self.waiting.popleft()
            if self.per_frame == 1:
                frame.pts = pts
            yield frame, wanted


def _frames_sequential(
    container: InputContainer, stream: VideoStream, start: int, stop: int, pad: int
) -> Iterator[_Tagged]:
    """Frames start..stop-1 from the beginning, with `pad` neighbours each side where they exist."""
    count = 0
    for count, frame in enumerate(decoded_frames(container, stream), start=1):
        index = count - 1
        if index >= start - pad:
            yield frame, start <= index < stop
        if index == stop - 1 + pad:
            return
    if count < stop:
        raise MediaError(f"frames [{start}, {stop}) requested but the video has {count}")


# Seeks back at most 2**_MAX_BACKOFF frame durations before the target before giving up.
_MAX_BACKOFF = 12


def _frames_after_seek(
    container: InputContainer, stream: VideoStream, count: int, pts_range: tuple[int, int], pad: int
) -> Iterator[_Tagged]:
    """Seek, then `count` frames from the one with pts `pts_range[0]` (and `pad` neighbours each
    side); _SeekMiss when that cannot be trusted.

    The first frame out of the decoder must be a keyframe at or before the target (before it,
    with a neighbour to read): an index that points past the target, or an open GOP whose
    leading pictures reference the previous GOP, shows up as a first frame that is late or not
    a keyframe, and we seek further back (by doubling multiples of the mean frame duration).
    The last frame must carry the expected last pts, and pts must increase on the way: a
    dropped or duplicated frame fails.
    """
    first_pts, last_pts = pts_range
    step = max(1, (last_pts - first_pts) // max(1, count - 1))
    previous = None
    for attempt in range(_MAX_BACKOFF + 1):
        back = 0 if attempt == 0 else step << (attempt - 1)
        container.seek(first_pts - back, stream=stream, backward=True)
        frames = decoded_frames(container, stream)
        first = next(frames, None)
        if first is None or first.pts is None:
            raise _SeekMiss
        if (first.pts < first_pts or (first.pts == first_pts and not pad)) and first.key_frame:
            break
        if first.pts == previous:  # seeking further back lands on the same frame: the start
            raise _SeekMiss
        previous = first.pts
    else:
        raise _SeekMiss
    before: av.VideoFrame | None = None
    taken = 0
    last = None
    for frame in chain([first], frames):
        if frame.pts is None or (last is not None and frame.pts <= last):
            raise _SeekMiss
        last = frame.pts
        if frame.pts < first_pts:
            before = frame
            continue
        if taken == 0:
            if frame.pts != first_pts:
                raise _SeekMiss
            if pad:
                yield before, False  # type: ignore[misc]  # the loop above stopped before first_pts
        if taken == count:
            yield frame, False  # the neighbour after the range
            return
        yield frame, True
        taken += 1
        if taken == count:
            if frame.pts != last_pts:
                raise _SeekMiss
            if not pad:
                return
    if taken < count:
        raise _SeekMiss


def decoded_frames(
    container: InputContainer,
    stream: VideoStream,
    audio: AudioTimestampCheck | None = None,
    from_pts: int | None = None,
) -> Iterator[av.VideoFrame]:
    """Frames in presentation order from the current position; an FFmpeg error, or a frame the
    decoder flags as only partly reconstructed, becomes a MediaError naming the index of the
    frame that failed (counted from this position). With `audio`, the packets of its streams,
    read in the same pass, go to its check. With `from_pts`, frames before it are dropped unchecked
    (after a seek to a keyframe, an open GOP's leading pictures need frames from before it).

    The first damaged frame fails the whole video: an upscale of a concealed frame is not a
    faithful output, and the probe (which decodes every frame) finds it before any work.
    Damage a codec cannot detect (no checksums in H.264/HEVC slices) still decodes silently.
    """
    index = 0
    try:
        for packet in container.demux(stream, *(audio.streams if audio else ())):
            if packet.stream.index != stream.index:
                audio.see(packet)  # type: ignore[union-attr]
                continue
            for frame in packet.decode():
                if from_pts is not None and (frame.pts is None or frame.pts < from_pts):
                    continue
                if frame.is_corrupt:
                    raise MediaError(f"decoding failed at frame {index}: damaged data, only partly decoded")
                yield frame
                index += 1
    except av.error.FFmpegError as exc:
        raise MediaError(f"decoding failed at frame {index}: {ffmpeg_reason(exc)}") from exc


def reformat(
    reformatter: VideoReformatter, frame: av.VideoFrame, colour: Colour | None = None, **kwargs
) -> av.VideoFrame:
    """`frame.reformat` through a reused reformatter (PyAV's per-frame one rebuilds its scaler each
    time), reading YUV with `colour`'s matrix and range, or with the frame's own tags resolved as
    players resolve them (`colour.resolved`: untagged is BT.709 from 720 lines up, else BT.601;
    limited range) rather than swscale's BT.601 for everything.
    """
    if not frame.format.is_rgb:
        colour = colour or resolved(frame_colour(frame), frame.height, is_rgb=False)
        kwargs["src_colorspace"], kwargs["src_color_range"] = colour.matrix, colour.range
    return reformatter.reformat(frame, **kwargs)
