"""Clips from photos: the requested shape, the requested motion (pans at LR speeds, objects,
motion blur), reproducible from a seed; clips from videos."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.quality import flow
from pipeline.training.clips import (
    Motion,
    MotionRanges,
    MovingObject,
    draw_motion,
    film,
    make_clip,
    still_motion,
    video_clip,
)
from pipeline.training.degrade import bicubic_lr
from pipeline.training.sources import Source, load_media


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_film_shape_range_and_seed(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo0.png", max_side=1024)
    motion = draw_motion(_gen(1))
    a = film(source, 5, (64, 96), motion, 2, _gen(3))
    b = film(source, 5, (64, 96), motion, 2, _gen(3))
    c = film(source, 5, (64, 96), motion, 2, _gen(4))
    assert a.shape == (5, 3, 64, 96)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_a_pan_moves_the_lr_frames_by_its_speed(photo_dir: Path) -> None:
    """Speeds are in LR pixels per frame: the flow of the downscaled clip shows that pan."""
    source = load_media(photo_dir / "photo2.png", max_side=1024)
    scale, pan = 2, (3.0, -1.5)
    hr = film(source, 4, (96, 128), Motion(pan=pan), scale, _gen(0))
    lr = bicubic_lr(hr, scale)
    # F_t with lr[t+1](p + F) = lr[t](p): the content moves against the camera.
    measured = flow.estimate_flow(lr[:-1], lr[1:])[..., 8:-8, 8:-8]
    assert abs(measured[:, 0].median().item() + pan[0]) < 0.15
    assert abs(measured[:, 1].median().item() + pan[1]) < 0.15


def test_a_still_clip_repeats_its_frame(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo1.png", max_side=1024)
    moving = draw_motion(_gen(5), MotionRanges(object_probability=1.0, blur_probability=1.0))
    clip = film(source, 3, (64, 64), still_motion(moving), 2, _gen(2))
    assert (clip[1:] - clip[0]).abs().max() < 1e-6


def test_an_object_moves_over_the_background(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo0.png", max_side=1024)
    obj = MovingObject(source_at=(0.1, 0.7), size=(0.4, 0.4), start=(0.5, 0.3), velocity=(4.0, 0.0))
    background = film(source, 4, (64, 96), Motion(), 1, _gen(6))
    with_object = film(source, 4, (64, 96), Motion(objects=(obj,)), 1, _gen(6))
    changed = (with_object - background).abs().amax(1) > 0.05  # (T, H, W): where the object is
    assert changed[0].any()
    columns = [c.nonzero()[:, 1].float().mean().item() for c in changed]
    steps = [b - a for a, b in zip(columns, columns[1:])]
    assert all(3.0 < s < 5.0 for s in steps), steps  # 4 px per frame at scale 1, to the right


def test_motion_blur_smears_along_the_motion() -> None:
    """Bands across the motion are smeared away; bands along it stay sharp."""
    ys, xs = torch.meshgrid(torch.arange(300), torch.arange(300), indexing="ij")

    def bands(coordinate: torch.Tensor) -> Source:
        image = ((coordinate // 3) % 2 * 200 + 25).to(torch.uint8).expand(1, 3, 300, 300)
        return Source(Path("bands.png"), image)

    def blur_loss(source: Source) -> float:
        """Detail (mean absolute step, both axes) kept by an open shutter, as a fraction."""
        sharp, blurred = (
            film(source, 2, (64, 64), Motion(pan=(6.0, 0.0), shutter=shutter), 2, _gen(7)) for shutter in (0, 1)
        )

        def detail(x: torch.Tensor) -> float:
            return x.diff(dim=-1).abs().mean().item() + x.diff(dim=-2).abs().mean().item()

        return detail(blurred) / detail(sharp)

    assert blur_loss(bands(xs)) < 0.7  # stripes across a horizontal pan
    assert blur_loss(bands(ys)) > 0.8  # stripes along it (bilinear within a blur: a little softer)


def test_a_photo_too_small_for_the_move_gets_a_slower_one(photo_dir: Path) -> None:
    source = load_media(photo_dir / "photo1.png", max_side=200)  # 200 x 200
    clip = film(source, 6, (96, 96), Motion(pan=(40.0, 0.0)), 2, _gen(8))
    assert clip.shape == (6, 3, 96, 96)  # fits, at less than 40 px per frame


def test_video_clip_crops_consecutive_or_strided_frames() -> None:
    frames = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1).expand(30, 3, 20, 24).contiguous()
    source = Source(Path("v.mp4"), frames)
    strides = set()
    for seed in range(12):
        clip = video_clip(source, 4, (10, 12), _gen(seed))
        assert clip.shape == (4, 3, 10, 12)
        values = (clip[:, 0, 0, 0] * 255).round().tolist()
        steps = {b - a for a, b in zip(values, values[1:])}
        assert len(steps) == 1
        strides |= steps
    assert strides == {1.0, 2.0, 3.0}


def test_make_clip_films_photos_and_short_videos() -> None:
    gen_photo = torch.rand(1, 3, 80, 90, generator=_gen(0)).mul(255).to(torch.uint8)
    photo = Source(Path("p.png"), gen_photo)
    assert make_clip(photo, 4, (32, 32), 2, _gen(2)).shape == (4, 3, 32, 32)
    short = Source(Path("v.mp4"), gen_photo.expand(2, -1, -1, -1))  # 2 frames: too short for 4
    assert make_clip(short, 4, (32, 32), 2, _gen(2)).equal(make_clip(photo, 4, (32, 32), 2, _gen(2)))
