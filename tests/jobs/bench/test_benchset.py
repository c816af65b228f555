"""The benchmark set: photo choice, sizes and scenes, real footage as a scene, RGB-exact files, BI
track = training's bicubic_lr of the stored reference, deterministic and reused; the motion sweep's
pans at their speeds."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from jobs.bench.benchset import BenchSet, _write_ffv1, build_bench_set, pick_photos, sweep_clips
from pipeline.media.decode import decode_frames
from pipeline.media.probe import probe_video
from pipeline.quality import flow
from pipeline.training.degrade import bicubic_lr
from tests.clips import make_clip
from tests.pipeline.training.conftest import textured_image, write_image

SMALL = BenchSet(videos=2, scenes=2, frames=5, width=128, height=72, scale=4, seed=3, max_speed=1.0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_image(folder / f"p{i}.png", textured_image(200, 300, seed=i))
    write_image(folder / "portrait.png", textured_image(300, 200, seed=7))
    # One wallpaper at two sizes and a dark twin, named as jobs/train/photos.py names plasma's files.
    write_image(folder / "Wall_contents_images_300x200.png", textured_image(200, 300, seed=8))
    write_image(folder / "Wall_contents_images_dark_330x220.png", textured_image(220, 330, seed=9))
    write_image(folder / "Wall_contents_images_330x220.png", textured_image(220, 330, seed=10))
    write_image(folder / "tiny.png", textured_image(60, 90, seed=11))
    return folder


@pytest.fixture(scope="module")
def bench_root(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("set")
    build_bench_set(photos, root, SMALL)
    return root


def _frames(path: Path) -> np.ndarray:
    """Decoded as the pipeline decodes: RGB uint8 (T, H, W, 3)."""
    return decode_frames(path, 0, probe_video(path, detect_scenes=False).n_frames).frames


def _float(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def test_one_landscape_photo_per_wallpaper_large_enough(photos: Path) -> None:
    names = [p.name for p in pick_photos(photos, (72, 128), max_side=256)]
    # The portrait, the too-small photo and the smaller and dark variants are left out.
    assert names == ["Wall_contents_images_330x220.png", "p0.png", "p1.png", "p2.png"]


def test_sizes_scenes_and_photos(bench_root: Path) -> None:
    settings = json.loads((bench_root / "set.json").read_text())
    assert sorted(settings["scenes_of"]) == SMALL.names()
    for name, scene_photos in settings["scenes_of"].items():
        assert len(set(scene_photos)) == SMALL.scenes  # every scene a different photo
        hr = _frames(bench_root / "hr" / name)
        assert hr.shape == (SMALL.scenes * SMALL.frames, 72, 128, 3)
        for track in ("bi", "realistic"):
            assert _frames(bench_root / track / name).shape == (SMALL.scenes * SMALL.frames, 18, 32, 3)
        # Hard cuts: the change at a scene boundary dwarfs the camera move inside a scene.
        step = np.abs(np.diff(hr.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
        cut = SMALL.frames - 1
        assert step[cut] > 2 * np.delete(step, cut).max()


def test_ffv1_files_are_rgb_exact(tmp_path: Path) -> None:
    frames = torch.randint(0, 256, (3, 3, 20, 34), generator=torch.Generator().manual_seed(0)).float() / 255.0
    _write_ffv1(tmp_path / "x.mkv", frames)
    expected = (frames * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(_frames(tmp_path / "x.mkv"), expected)


def test_bi_track_is_bicubic_lr_of_the_stored_reference(bench_root: Path) -> None:
    for name in SMALL.names():
        hr = _float(_frames(bench_root / "hr" / name))
        bi = _float(_frames(bench_root / "bi" / name))
        scenes = zip(hr.split(SMALL.frames), bi.split(SMALL.frames))  # degraded per scene
        for hr_scene, bi_scene in scenes:
            assert (bicubic_lr(hr_scene, SMALL.scale) - bi_scene).abs().max() <= 0.5 / 255


def test_realistic_track_is_another_degradation(bench_root: Path) -> None:
    name = SMALL.names()[0]
    bi = _frames(bench_root / "bi" / name).astype(np.float32)
    realistic = _frames(bench_root / "realistic" / name).astype(np.float32)
    assert np.abs(bi - realistic).mean() > 1.0


def test_same_seed_same_set_and_reuse(photos: Path, bench_root: Path, tmp_path: Path) -> None:
    build_bench_set(photos, tmp_path, SMALL)
    for folder in ("hr", "bi", "realistic"):
        for name in SMALL.names():
            assert np.array_equal(_frames(tmp_path / folder / name), _frames(bench_root / folder / name))
    written = (tmp_path / "hr" / SMALL.names()[0]).stat().st_mtime_ns
    build_bench_set(photos, tmp_path, SMALL)  # same settings: reused, not rewritten
    assert (tmp_path / "hr" / SMALL.names()[0]).stat().st_mtime_ns == written
    # Fewer videos: the set is rebuilt and the extra video does not linger into the runs.
    fewer = replace(SMALL, videos=1)
    build_bench_set(photos, tmp_path, fewer)
    assert sorted(p.name for p in (tmp_path / "bi").iterdir()) == fewer.names()


def test_real_footage_opens_every_video_from_its_own_part(photos: Path, tmp_path: Path) -> None:
    folder = tmp_path / "with video"
    shutil.copytree(photos, folder)
    footage = make_clip(folder / "street.mkv", frames=30, size=(160, 96), codec="ffv1", pix_fmt="yuv444p")
    root = tmp_path / "set"
    build_bench_set(folder, root, SMALL)
    decoded = _frames(footage)
    starts = []
    for name in SMALL.names():
        first_scene = _frames(root / "hr" / name)[: SMALL.frames]
        # A centred 128x72 crop of consecutive frames of the footage.
        error = [
            np.abs(first_scene.astype(np.float32) - decoded[t : t + SMALL.frames, 12:84, 16:144]).mean()
            for t in range(30 - SMALL.frames + 1)
        ]
        matches = [t for t, e in enumerate(error) if e < 1.0]  # decoders may round a level apart
        assert len(matches) == 1
        starts.append(matches[0])
    assert len(set(starts)) == SMALL.videos  # each bench video from a different part


def test_sweep_pans_at_exactly_its_speeds(tmp_path: Path) -> None:
    write_image(tmp_path / "big.png", textured_image(420, 640, seed=4))
    spec = replace(SMALL, width=96, height=64)
    clips = sweep_clips(tmp_path, spec, speeds=(0.0, 1.0, 2.5), clips=1, frames=4)
    assert [speed for speed, _ in clips] == [0.0, 1.0, 2.5]
    for speed, hr in clips:
        assert hr.shape == (4, 3, 64, 96)
        lr = bicubic_lr(hr, spec.scale)
        moved = flow.estimate_flow(lr[:-1], lr[1:])[..., 3:-3, 3:-3].norm(dim=1).median().item()
        assert abs(moved - speed) < 0.2, (speed, moved)
    with pytest.raises(ValueError, match="room for a 30"):
        sweep_clips(tmp_path, spec, speeds=(0.0, 30.0), clips=1, frames=4)


def test_sweep_clips_share_their_middle_frame(tmp_path: Path) -> None:
    write_image(tmp_path / "big.png", textured_image(420, 640, seed=4))
    spec = replace(SMALL, width=96, height=64)
    clips = sweep_clips(tmp_path, spec, speeds=(0.0, 1.0, 2.5), clips=1, frames=5)
    middles = [hr[2] for _, hr in clips]
    assert all((m - middles[0]).abs().mean() < 2 / 255 for m in middles[1:])  # up to resampling
