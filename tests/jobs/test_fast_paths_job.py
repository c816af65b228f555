"""The fast paths' settings through a real job on a local Ray cluster: tiles, two segments per
batch, both models in one pool and `encode.hardware: auto` give the plain job's video; bf16 gives
one within its tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.run.job import run_job
from pipeline.config import load_job_spec
from pipeline.manifest.files import read_manifests
from pipeline.media import decode_frames
from pipeline.media.nvenc import nvenc_probe
from pipeline.models.tiling import min_tile
from pipeline.models.weights import model_info
from pipeline.storage import Storage
from tests.clips import make_clip

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


def clip(tmp_path: Path, size: tuple[int, int]) -> Path:
    (tmp_path / "in").mkdir()
    return make_clip(tmp_path / "in" / "c.mp4", frames=14, size=size)


def upscale(src: Path, out: Path, **overrides) -> np.ndarray:
    spec = load_job_spec(None, {"input": str(src), "output": str(out), "scale": 2, "segment.max_core_frames": 6,
                                "encode.codec": "ffv1", **overrides})  # fmt: skip
    summary = run_job(spec, echo=lambda _: None)
    assert summary.ok
    return decode_frames(str(out / "c_x2.mkv"), 0, 14).frames  # ffv1: lossless, the models' pixels themselves


def test_fast_paths_and_the_fused_pool_give_the_plain_jobs_video(tmp_path: Path) -> None:
    # Tiles just above each model's smallest, on frames they divide unevenly (x2: HR tiles of the light model).
    strong, light = (model_info(kind, "tiny", 2) for kind in ("strong", "light"))
    strong_tile = min_tile(strong.spatial_radius, strong.spatial_align) + 2
    light_tile = min_tile(light.spatial_radius, light.spatial_align) + 10
    src = clip(tmp_path, (strong_tile + 20, strong_tile + 6))
    plain = upscale(src, tmp_path / "plain")
    fast = upscale(
        src,
        tmp_path / "fast",
        **{"strong_pool.tile": strong_tile, "light_pool.tile": light_tile, "strong_pool.batch_size": 2,
           "light_pool.batch_size": 2},
    )  # fmt: skip
    levels = np.abs(fast.astype(int) - plain.astype(int))
    # Float rounding only: one level, rarely (the flow's warp samples at coordinates computed per tile).
    assert levels.max() <= 1 and (levels == 0).mean() > 0.99
    low = upscale(src, tmp_path / "bf16", **{"strong_pool.precision": "bf16", "light_pool.precision": "bf16"})
    levels = np.abs(low.astype(int) - plain.astype(int))
    assert levels.mean() < 0.5 and levels.max() <= 4
    # Both models in one pool: the same pixels, and the manifest still times and counts each stage.
    assert np.array_equal(upscale(src, tmp_path / "fused", fused=True), plain)
    _, segments = read_manifests(Storage(), str(tmp_path / "fused"))
    assert segments.num_rows == read_manifests(Storage(), str(tmp_path / "plain"))[1].num_rows >= 3
    assert all(row["strong_s"] > 0 and row["light_s"] > 0 and row["attempts"] == 1 for row in segments.to_pylist())


def test_auto_hardware_writes_the_software_encoders_video_here(tmp_path: Path) -> None:
    src = clip(tmp_path, (96, 64))
    outputs, encoders = {}, {}
    for hardware in ("never", "auto"):
        out = tmp_path / hardware
        spec = load_job_spec(None, {"input": str(src), "output": str(out), "scale": 2, "encode.hardware": hardware})
        assert run_job(spec, echo=lambda _: None).ok
        outputs[hardware] = decode_frames(str(out / "c_x2.mp4"), 0, 14).frames.astype(np.float64)
        encoders[hardware] = set(read_manifests(Storage(), str(out))[1]["encoder"].to_pylist())
    if nvenc_probe("h264_nvenc") is None:
        pytest.skip("NVENC works here: auto used it, so the outputs differ by design")
    assert encoders == {"never": {"libx264"}, "auto": {"libx264"}}
    # The same encoder and settings. Not bit-equal: this FFmpeg build's libx264 gives one of a few
    # slightly different streams for the same frames from one encode to the next, even with one thread.
    mse = np.mean((outputs["never"] - outputs["auto"]) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) > 40
