"""Open sources (local paths or seekable file objects, e.g. S3 bodies) and decode frame ranges."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import BinaryIO, NamedTuple

import av
import numpy as np
from av.container import InputContainer
from av.stream import Disposition
from av.video.reformatter import Colorspace, VideoReformatter
from av.video.stream import VideoStream

from .errors import MediaError, ffmpeg_reason

Source = str | os.PathLike[str] | BinaryIO
_UNSPECIFIED = 2  # AVCOL_SPC_UNSPECIFIED: the stream does not say which YUV matrix it uses


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
    frames: np.ndarray  # uint8 RGB (T, H, W, 3)
    pts: list[int | None]  # as the decoder gave them (None where the container has none)


def decode_frames(src: Source, start: int, stop: int, pts_range: tuple[int, int] | None = None) -> Decoded:
    """RGB24 frames start..stop-1 (presentation order) at the stored size, and their pts.

    With `pts_range` (the pts of frames `start` and `stop - 1` from `probe_video`, only when
    not synthetic: two numbers, whatever the video's length) it seeks to a keyframe before
    `start`; otherwise, or if seeking does not land exactly there, it decodes from the
    beginning. Both give the same frames as one sequential decode.
    """
    if not 0 <= start < stop:
        raise ValueError(f"bad frame range [{start}, {stop})")
    if pts_range is not None and start > 0:
        with open_source(src) as container:
            try:
                decoded = _decode_after_seek(container, video_stream(container), stop - start, pts_range)
            except MediaError:
                decoded = None  # the sequential pass below reports the exact failing frame
        if decoded is not None:
            return decoded
    with open_source(src) as container:
        return _decode_sequential(container, video_stream(container), start, stop)


def _decode_sequential(container: InputContainer, stream: VideoStream, start: int, stop: int) -> Decoded:
    out = np.empty((stop - start, stream.height, stream.width, 3), np.uint8)
    pts: list[int | None] = []
    reformatter = VideoReformatter()
    count = 0
    for count, frame in enumerate(decoded_frames(container, stream), start=1):
        if count > start:
            out[count - 1 - start] = _rgb(frame, out.shape, reformatter)
            pts.append(frame.pts)
            if count == stop:
                return Decoded(out, pts)
    raise MediaError(f"frames [{start}, {stop}) requested but the video has {count}")


# Seeks back at most 2**_MAX_BACKOFF frame durations before the target before giving up.
_MAX_BACKOFF = 12


def _decode_after_seek(
    container: InputContainer, stream: VideoStream, count: int, pts_range: tuple[int, int]
) -> Decoded | None:
    """Seek, then decode `count` frames from the one with pts `pts_range[0]`; None when that
    cannot be trusted.

    The first frame out of the decoder must be a keyframe at or before the target: an index
    that points past the target, or an open GOP whose leading pictures reference the previous
    GOP, shows up as a first frame that is late or not a keyframe, and we seek further back
    (by doubling multiples of the mean frame duration). The last frame must carry the
    expected last pts, and pts must increase on the way: a dropped or duplicated frame fails.
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
            return None
        if first.pts <= first_pts and first.key_frame:
            break
        if first.pts == previous:  # seeking further back lands on the same frame: the start
            return None
        previous = first.pts
    else:
        return None
    out = np.empty((count, stream.height, stream.width, 3), np.uint8)
    pts: list[int | None] = []
    reformatter = VideoReformatter()
    for frame in chain([first], frames):
        if frame.pts is None or (pts and frame.pts <= pts[-1]):
            return None
        if frame.pts < first_pts:
            continue
        if not pts and frame.pts != first_pts:
            return None
        out[len(pts)] = _rgb(frame, out.shape, reformatter)
        pts.append(frame.pts)
        if len(pts) == count:
            return Decoded(out, pts) if frame.pts == last_pts else None
    return None


def decoded_frames(container: InputContainer, stream: VideoStream) -> Iterator[av.VideoFrame]:
    """Frames in presentation order from the current position; an FFmpeg error, or a frame the
    decoder flags as only partly reconstructed, becomes a MediaError naming the index of the
    frame that failed (counted from this position).

    The first damaged frame fails the whole video: an upscale of a concealed frame is not a
    faithful output, and the probe (which decodes every frame) finds it before any work.
    Damage a codec cannot detect (no checksums in H.264/HEVC slices) still decodes silently.
    """
    index = 0
    try:
        for frame in container.decode(stream):
            if frame.is_corrupt:
                raise MediaError(f"decoding failed at frame {index}: damaged data, only partly decoded")
            yield frame
            index += 1
    except av.error.FFmpegError as exc:
        raise MediaError(f"decoding failed at frame {index}: {ffmpeg_reason(exc)}") from exc


def _rgb(frame: av.VideoFrame, shape: tuple[int, ...], reformatter: VideoReformatter) -> np.ndarray:
    if (frame.height, frame.width) != shape[1:3]:
        raise MediaError(f"frame size changes mid-stream ({frame.width}x{frame.height})")
    return reformat(reformatter, frame, format="rgb24").to_ndarray()


def reformat(reformatter: VideoReformatter, frame: av.VideoFrame, **kwargs) -> av.VideoFrame:
    """`frame.reformat` through a reused reformatter: PyAV's per-frame one rebuilds its scaler each time.

    Tagged video converts with its own matrix; untagged YUV follows players (BT.709 from 720
    lines up, BT.601 below) rather than swscale's BT.601 for everything.
    """
    if frame.colorspace == _UNSPECIFIED and not frame.format.is_rgb:
        kwargs["src_colorspace"] = Colorspace.ITU709 if frame.height >= 720 else Colorspace.ITU601
    return reformatter.reformat(frame, **kwargs)
