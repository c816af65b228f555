"""The host conversions between pixel arrays and float frames (pipeline/models/inference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.inference import to_pixels, to_tensor


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
