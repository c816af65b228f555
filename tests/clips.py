"""Test videos: the synthetic clips of pipeline.media.synthetic, and broken files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import av
import torch

from pipeline.media.synthetic import clip_timing, make_audio_only, make_clip, synthetic_frame
from pipeline.training.clips import Motion, film
from pipeline.training.sources import load_media

__all__ = [
    "clip_timing",
    "damage_packet",
    "make_audio_only",
    "make_clip",
    "make_corrupt",
    "make_truncated",
    "make_unstamped_audio",
    "photo_clip",
    "synthetic_frame",
]


def make_corrupt(path: str | os.PathLike[str], size: int = 4096) -> Path:
    """Random bytes under a video file name."""
    path = Path(path)
    path.write_bytes(random.Random(0).randbytes(size))
    return path


def make_unstamped_audio(path: str | os.PathLike[str], frames: int = 24) -> Path:
    """An AVI (MPEG-4 video, AAC audio) whose audio packets all read back at pts 0: a stream copy
    that drops the audio timestamps, as a careless trim of OpenCV's Megamind.avi leaves it."""
    path = Path(path)
    stamped = make_clip(path.with_name(f"stamped-{path.name}"), frames=frames, audio_streams=1, codec="mpeg4")
    with av.open(str(stamped)) as src, av.open(str(path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (*src.streams.video, *src.streams.audio)}
        for packet in src.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "audio":
                packet.pts = packet.dts = None
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return path


def make_truncated(src: str | os.PathLike[str], dst: str | os.PathLike[str], keep: float = 0.3) -> Path:
    """The first `keep` fraction of a real clip, as an interrupted download leaves it."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def damage_packet(path: str | os.PathLike[str], index: int, nbytes: int = 8, seed: int = 0) -> Path:
    """Overwrite `nbytes` inside the payload of the `index`-th video packet (decode order) with
    random bytes, in place: the container stays intact, only that picture's coded data is bad,
    as a flipped sector or a bad tape transfer leaves it."""
    path = Path(path)
    with av.open(str(path)) as container:
        packet = [p for p in container.demux(container.streams.video[0]) if p.size][index]
        pos, size = packet.pos, packet.size
    if pos < 0 or nbytes > size - size // 3:
        raise ValueError(f"packet {index} ({size} bytes at {pos}) cannot take {nbytes} damaged bytes")
    start = pos + size // 3
    data = bytearray(path.read_bytes())
    data[start : start + nbytes] = random.Random(seed).randbytes(nbytes)
    path.write_bytes(data)
    return path


FIXTURE_PHOTO = Path(__file__).parent / "fixtures" / "by_the_water_crop.png"


def photo_clip(
    frames: int, size: tuple[int, int], seed: int = 3, max_side: int = 300, pan: tuple[float, float] = (0.6, 0.35)
) -> torch.Tensor:
    """(T, 3, H, W) float frames of a camera pan over a real photo (the fixture), `pan` HR pixels
    per frame (default: a slow sub-pixel move)."""
    source = load_media(FIXTURE_PHOTO, max_side=max_side)
    return film(source, frames, size, Motion(pan=pan, zoom=0.002), 1, torch.Generator().manual_seed(seed))
