"""The models-alone benchmarks: every method scored on the same 8-bit path, the ablation runs the
same weights without neighbours, the sweep reports each speed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jobs.bench.benchset import BenchSet, build_bench_set
from jobs.bench.motion import METHODS, Methods, ablation, motion_sweep, psnr_markdown, without_neighbours
from pipeline.config import load_job_spec
from pipeline.models import load_model
from pipeline.models.inference import run_strong
from tests.clips import photo_clip
from tests.pipeline.training.conftest import textured_image, write_image

SMALL = BenchSet(videos=1, scenes=2, frames=4, width=96, height=64, scale=4, seed=1, max_speed=1.0)


@pytest.fixture(scope="module")
def methods() -> Methods:
    return Methods("tiny", "tiny", 4, load_job_spec(None, {"input": "-", "output": "-"}))


def test_every_method_gives_8_bit_frames_of_the_output_size(methods: Methods) -> None:
    lr = photo_clip(5, (16, 24))
    outs = methods.run(lr)
    assert list(outs) == list(METHODS)
    for out in outs.values():
        assert out.shape == (5, 3, 64, 96)
        assert torch.equal(out * 255, (out * 255).round())
    assert not torch.equal(outs["strong"], outs["bicubic"])


def test_without_neighbours_is_the_same_model_at_window_zero() -> None:
    model, _ = load_model("strong", "tiny", 4)
    lr = photo_clip(5, (16, 24))
    with without_neighbours(model) as alone:
        assert alone.temporal_radius == 0
        single = torch.cat([run_strong(alone, lr[t : t + 1], slice(0, 1), 0, 1) for t in range(5)])
        # Frame by frame, up to float rounding (batched convolutions may sum in another order).
        torch.testing.assert_close(run_strong(alone, lr, slice(0, 5), 0, 8), single, atol=1e-6, rtol=0)
    assert model.temporal_radius > 0  # restored


def test_ablation_and_sweep_rows(methods: Methods, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        write_image(photos / f"p{i}.png", textured_image(360, 520, seed=i))
    build_bench_set(photos, tmp_path / "set", SMALL)
    rows = ablation(tmp_path / "set", SMALL, methods, echo=lambda _: None)
    assert [r["track"] for r in rows] == ["bi", "realistic"]
    assert all(r["scenes"] == 2 and r["from_neighbours"] == r["strong"] - r["strong, no neighbours"] for r in rows)
    sweep = motion_sweep(photos, SMALL, methods, lambda _: None, speeds=(0.0, 2.0), clips_per_speed=1, frames=4)
    assert [(r["track"], r["speed"]) for r in sweep] == [("bi", 0.0), ("bi", 2.0), ("realistic", 0.0), ("realistic", 2.0)]
    assert all(10 < r[m] < 100 for r in sweep for m in METHODS)
    assert psnr_markdown(sweep, "speed", "LR px/frame").count("\n") == 1 + len(sweep)
