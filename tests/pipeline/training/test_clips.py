"""Clips from photos: the requested shape, smooth sub-pixel motion, reproducible from a seed."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.training.clips import CameraMotion, camera_clip, make_clip, video_clip
from pipeline.training.sources import Source, load_media


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_camera_clip_shape_range_and_seed(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo0.png", max_side=1024)
    a = camera_clip(source, 5, (64, 96), _gen(3))
    b = camera_clip(source, 5, (64, 96), _gen(3))
    c = camera_clip(source, 5, (64, 96), _gen(4))
    assert a.shape == (5, 3, 64, 96)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_camera_moves_a_little_each_frame(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo1.png", max_side=1024)
    clip = camera_clip(
        source,
        6,
        (64, 64),
        _gen(0),
        CameraMotion(max_pan=1.5, max_zoom=0, max_rotate_deg=0),
    )
    steps = (clip[1:] - clip[:-1]).abs().mean(dim=(1, 2, 3))
    assert (steps > 1e-3).all()  # it moves every frame...
    assert (steps < 0.2).all()  # ...smoothly, never a cut
    # A still camera films a still picture.
    still = camera_clip(
        source,
        4,
        (64, 64),
        _gen(0),
        CameraMotion(max_pan=0, max_zoom=0, max_rotate_deg=0),
    )
    assert torch.allclose(still[0], still[-1])


def test_small_photos_get_a_smaller_move_instead_of_failing(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo0.png", max_side=160)  # 160 x 114
    clip = camera_clip(source, 7, (96, 96), _gen(1), CameraMotion(max_pan=10))
    assert clip.shape == (7, 3, 96, 96)


def test_video_sources_give_consecutive_frames() -> None:
    frames = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 40, 50).contiguous()
    source = Source(Path("v.mp4"), frames)
    clip = video_clip(source, 4, (16, 16), _gen(2))
    values = clip[:, 0, 0, 0] * 255
    assert torch.equal(values - values[0], torch.arange(4, dtype=torch.float32))
    assert make_clip(source, 4, (16, 16), _gen(2)).equal(clip)
