"""Review crops (pipeline/quality/crops.py): B(input) and the output, where they differ most."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.inference import to_tensor, to_uint8
from pipeline.models.strong import bicubic_upscale
from pipeline.quality.crops import review_crop


def lr_frame() -> np.ndarray:
    y, x = np.mgrid[0:36, 0:64]
    ramp = 128 + 60 * np.sin(x / 7.0 + y / 5.0)
    return np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], axis=2).astype(np.uint8)


def bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    return to_uint8(bicubic_upscale(to_tensor(lr[None], torch.device("cpu")), scale))[0]


def test_the_window_is_where_the_output_differs_most():
    lr = lr_frame()
    out = bicubic(lr, 4).copy()  # 256 x 144
    out[100:120, 200:230] = 255  # invented detail, bottom right
    crop = review_crop(lr, out, 4, size=64)
    assert crop.bicubic.shape == crop.output.shape == (64, 64, 3)
    assert crop.x <= 200 and crop.x + 64 >= 230 and crop.y <= 100 and crop.y + 64 >= 120
    assert np.array_equal(crop.bicubic, bicubic(lr, 4)[crop.y : crop.y + 64, crop.x : crop.x + 64])
    assert np.array_equal(crop.output, out[crop.y : crop.y + 64, crop.x : crop.x + 64])


def test_padding_is_ignored_and_a_small_frame_is_shown_whole():
    lr = lr_frame()[:9, :15]  # x3: 45 x 27, which a 4:2:0 encoder pads to 46 x 28
    out = np.zeros((28, 46, 3), np.uint8)
    out[:27, :45] = bicubic(lr, 3)
    crop = review_crop(lr, out, 3, size=160)
    assert crop.output.shape == (27, 45, 3) and (crop.x, crop.y) == (0, 0)
    assert np.array_equal(crop.output, crop.bicubic)
    with pytest.raises(ValueError, match="smaller than the input x3"):
        review_crop(lr, out[:20], 3)
