"""Review crops: the input upscaled bicubic next to the output, where the two differ most."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.models.inference import to_tensor, to_uint8
from pipeline.models.strong import bicubic_upscale

CROP_SIZE = 160  # output pixels: big enough to judge texture, small enough to show two side by side


@dataclass(frozen=True)
class Crop:
    x: int  # top-left corner in output pixels
    y: int
    bicubic: np.ndarray  # (h, w, 3) uint8: B(input), the manifests' reference for "no invented detail"
    output: np.ndarray  # (h, w, 3) uint8: the same window of the output


def review_crop(lr: np.ndarray, out: np.ndarray, scale: int, size: int = CROP_SIZE) -> Crop:
    """The size x size window (the whole frame if smaller) of the output frame `out` whose summed
    |out - B(lr)| is largest, and the same window of B(lr); frames are RGB24 (H, W, 3)."""
    height, width = lr.shape[0] * scale, lr.shape[1] * scale
    if out.shape[0] < height or out.shape[1] < width:
        raise ValueError(f"output frame {out.shape[1]}x{out.shape[0]} is smaller than the input x{scale}")
    out = out[:height, :width]  # the encoder pads odd sizes to even (4:2:0)
    bicubic = to_uint8(bicubic_upscale(to_tensor(lr[None], torch.device("cpu")), scale))[0]
    difference = np.abs(out.astype(np.int32) - bicubic.astype(np.int32)).sum(axis=2)
    crop_h, crop_w = min(size, height), min(size, width)
    y, x = _heaviest_window(difference, crop_h, crop_w)
    window = (slice(y, y + crop_h), slice(x, x + crop_w))
    return Crop(x, y, bicubic[window], out[window])


def _heaviest_window(weights: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """Top-left (y, x) of the height x width window with the largest sum, from an integral image."""
    integral = np.pad(weights.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    below, right = integral[height:, :], integral[:, width:]
    sums = below[:, width:] - right[:-height, :] - below[:, :-width] + integral[:-height, :-width]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)
