"""Test videos: the synthetic clips of pipeline.media.synthetic, and broken files."""

from __future__ import annotations

import os
import random
from pathlib import Path

from pipeline.media.synthetic import clip_timing, make_audio_only, make_clip, synthetic_frame

__all__ = ["clip_timing", "make_audio_only", "make_clip", "make_corrupt", "make_truncated", "synthetic_frame"]


def make_corrupt(path: str | os.PathLike[str], size: int = 4096) -> Path:
    """Random bytes under a video file name."""
    path = Path(path)
    path.write_bytes(random.Random(0).randbytes(size))
    return path


def make_truncated(src: str | os.PathLike[str], dst: str | os.PathLike[str], keep: float = 0.3) -> Path:
    """The first `keep` fraction of a real clip, as an interrupted download leaves it."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
