"""The host conversions between pixel arrays and float frames, and the strong model's passes to
pixels (pipeline/models/inference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import load_model
from pipeline.models.inference import run_strong, to_pixels, to_tensor, upscale_pixels


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_pixels_is_the_plain_clamp_scale_round(dtype: type) -> None:
    """Frame by frame on CPU, the same integers as the whole-tensor formula, out-of-range values
    clamped and halves rounded to even, in (T, H, W, 3) order."""
    peak = float(np.iinfo(dtype).max)
    frames = torch.rand(5, 3, 7, 9, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2
    frames[0, 0, 0, :4] = torch.tensor([0.5, 1.5, 2.5, 3.5]) / peak  # ties
    got = to_pixels(frames, np.dtype(dtype))
    plain = (frames.clamp(0, 1) * peak).round().permute(0, 2, 3, 1).to(torch.float64).numpy()
    assert got.dtype == dtype and got.shape == (5, 7, 9, 3)
    np.testing.assert_array_equal(got, plain.astype(dtype))
    assert list(got[0, 0, :4, 0]) == [0, 2, 2, 4]
    assert got.min() == 0 and got.max() == peak  # the clamped values


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pixels_survive_the_float_round_trip(dtype: type) -> None:
    pixels = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (3, 4, 6, 3), endpoint=True).astype(dtype)
    np.testing.assert_array_equal(to_pixels(to_tensor(pixels, "cpu"), np.dtype(dtype)), pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_upscale_pixels_is_run_strong_to_pixels(dtype: type) -> None:
    """Pass by pass to pixels (float frames of one pass at a time) gives the integers of converting
    the whole float output, for the shipped strong model (temporal context across passes) and for
    the classical stand-in."""
    lr = torch.rand(9, 3, 12, 16, generator=torch.Generator().manual_seed(2))
    core = slice(2, 8)
    for name in ("tiny", "bicubic"):
        model, _ = load_model("strong", name, 2, torch.device("cpu"))
        radius = model.temporal_radius
        whole = to_pixels(run_strong(model, lr, core, radius, 8), np.dtype(dtype))
        passes = upscale_pixels(model, lr, core, radius, 4, np.dtype(dtype))  # two passes
        assert passes.dtype == dtype and passes.shape == (6, 24, 32, 3)
        np.testing.assert_array_equal(passes, whole)
