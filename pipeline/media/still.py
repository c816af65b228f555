"""Single frames for people to look at: a video's frame at a time, and PNG bytes (`pssr report`)."""

from __future__ import annotations

import av
import numpy as np

from .decode import Source, open_source, video_stream
from .errors import MediaError


def frame_at(src: Source, offset_s: float) -> np.ndarray:
    """The RGB24 frame (H, W, 3) nearest `offset_s` seconds after the video's first frame.

    Times count from the first frame, as the manifests' time codes do, so an input and its output
    (same timing, whatever each container's start offset) give the same frame. It seeks to a
    keyframe before the time; where seeking lands late (an index that does not cover it) it
    decodes from the start instead.
    """
    with open_source(src) as container:
        stream = video_stream(container)
        first = next((f for f in container.decode(stream) if f.time is not None), None)
        if first is None:
            raise MediaError("no timed video frame")
        target = first.time + offset_s
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        frame = _nearest(container.decode(stream), target)
        if frame is None or frame.time > target + 1e-3:
            container.seek(0, stream=stream, backward=True)
            frame = _nearest(container.decode(stream), target)
        if frame is None:
            raise MediaError(f"no frame near {offset_s:.3f} s")
        return frame.to_ndarray(format="rgb24")


def _nearest(frames, target: float) -> av.VideoFrame | None:
    """The frame nearest `target` seconds among decoded frames (presentation order)."""
    best = None
    for frame in frames:
        if frame.time is None:
            continue
        if best is None or abs(frame.time - target) < abs(best.time - target):
            best = frame
        if frame.time >= target:
            break
    return best


def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG file of an RGB24 image (H, W, 3), with FFmpeg's encoder."""
    height, width = rgb.shape[:2]
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])
