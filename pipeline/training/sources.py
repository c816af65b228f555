"""Training material from a folder: still images and videos, decoded with PyAV, held as uint8.

Photos are reduced once at load time (area filter) so a few dozen 5K wallpapers fit in memory;
the camera move in clips.py then samples HR frames from them at about one source pixel per
output pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import torch
import torch.nn.functional as F

from pipeline.errors import PssrError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf", ".ts")


class SourceError(PssrError, ValueError):
    """A training folder holds nothing usable, or a file in it cannot be read."""


@dataclass(frozen=True)
class Source:
    """One photo (frames == 1) or a run of consecutive video frames: uint8 (T, 3, H, W)."""

    path: Path
    frames: torch.Tensor

    @property
    def is_video(self) -> bool:
        return self.frames.shape[0] > 1


def find_media(folders: list[str | os.PathLike[str]]) -> list[Path]:
    """Image and video files under the folders, sorted, one entry per real file (symlinks and
    the same file reached twice count once: wallpaper packages link one image under many names)."""
    seen: dict[Path, Path] = {}
    for folder in map(Path, folders):
        if not folder.exists():
            raise SourceError(f"training folder {folder} does not exist")
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                seen.setdefault(path.resolve(), path)
    if not seen:
        raise SourceError(f"no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}) under {folders}")
    return sorted(seen.values())


def _reduce(frames: torch.Tensor, max_side: int) -> torch.Tensor:
    """Area-downscale uint8 (T, 3, H, W) so its longer side is at most `max_side`."""
    h, w = frames.shape[-2:]
    if max(h, w) <= max_side:
        return frames
    size = (
        max(1, round(h * max_side / max(h, w))),
        max(1, round(w * max_side / max(h, w))),
    )
    out = torch.cat([F.interpolate(f.float().unsqueeze(0), size=size, mode="area") for f in frames])
    return out.round().clamp(0, 255).to(torch.uint8)


def load_media(path: Path, max_side: int, max_frames: int = 64, start: int = 0) -> Source:
    """Decode an image (one frame) or `max_frames` frames of a video from frame `start` as RGB uint8."""
    frames = []
    try:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index < start:
                    continue
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                frames.append(_reduce(rgb.unsqueeze(0), max_side))
                if len(frames) >= max_frames:
                    break
    except (av.FFmpegError, IndexError) as exc:
        raise SourceError(f"cannot decode training file {path}: {exc}") from exc
    if not frames:
        raise SourceError(f"training file {path} holds no video frames")
    return Source(path, torch.cat(frames))


def load_sources(folders: list[str | os.PathLike[str]], max_side: int, min_side: int) -> list[Source]:
    """Every usable file under the folders; files smaller than `min_side` (icons, say) are skipped."""
    sources = [load_media(path, max_side) for path in find_media(folders)]
    sources = [s for s in sources if min(s.frames.shape[-2:]) >= min_side]
    if not sources:
        raise SourceError(f"no image or video under {folders} is at least {min_side} pixels on its shorter side")
    return sources
