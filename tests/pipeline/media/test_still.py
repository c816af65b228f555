"""Frames at a time and PNG bytes for the report (pipeline/media/still.py)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.media import MediaError
from pipeline.media.still import frame_at, png_bytes
from tests.clips import make_clip


def decoded(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every frame in presentation order with its time from the first frame, by one sequential decode."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.time - frames[0].time for f in frames], [f.to_ndarray(format="rgb24") for f in frames]


@pytest.mark.parametrize(("name", "options"), [("vfr.mp4", {"vfr": True}), ("hevc.mkv", {"codec": "hevc"})])
def test_the_frame_at_a_time_is_the_one_shown_then(tmp_path: Path, name: str, options: dict):
    # 40 frames, keyframes every 12 (B-frames in h264, open GOPs in hevc): seeking must land before.
    clip = make_clip(tmp_path / name, frames=40, size=(64, 48), gop=12, **options)
    times, frames = decoded(clip)
    for index in (0, 5, 12, 13, 30, 39):
        assert np.array_equal(frame_at(clip, times[index]), frames[index]), index
    with open(clip, "rb") as source:  # a file object, as an S3 object is read
        assert np.array_equal(frame_at(source, times[30]), frames[30])


def test_a_file_that_is_no_video_is_a_media_error(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError):
        frame_at(bad, 0.0)


def test_png_bytes_round_trip():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    data = png_bytes(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    codec = av.CodecContext.create("png", "r")
    (frame,) = codec.decode(av.Packet(data))
    assert np.array_equal(frame.to_ndarray(format="rgb24"), image)
