"""LightSR: the compact per-frame CNN (local texture and edges), HR -> HR refinement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LightSR(nn.Module):
    """(N, 3, H, W) in [0, 1] -> same shape: input plus a learned residual, clamped to [0, 1].

    With `unshuffle` r > 1 the body works on r x r pixel blocks folded into channels
    (pixel-unshuffle, then pixel-shuffle back): r² fewer positions with r² more channels, so
    the same multiply-adds run as wider, faster convolutions and each 3x3 conv sees r times
    further. Odd sizes are padded by repeating the edge and cropped back.
    """

    def __init__(self, features: int, n_convs: int, unshuffle: int = 1) -> None:
        super().__init__()
        if features < 1 or n_convs < 0 or unshuffle < 1:
            raise ValueError(f"bad LightSR settings: features={features} n_convs={n_convs} unshuffle={unshuffle}")
        self.unshuffle, self.n_convs = unshuffle, n_convs
        channels = 3 * unshuffle * unshuffle
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        for _ in range(n_convs):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(features, channels, 3, padding=1)
        # Honest start: a fresh model returns its input unchanged.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def spatial_radius(self) -> int:
        """HR pixels an output pixel sees on each side (tiling's margin, pipeline/models/tiling.py): the
        n_convs + 2 3x3 convs reach as many r x r blocks, and a pixel sees its whole block."""
        return (self.n_convs + 3) * self.unshuffle - 1

    @property
    def spatial_align(self) -> int:
        """Tiles start on multiples of r, so they fold the same r x r blocks as the whole frame."""
        return self.unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"LightSR expects (N, 3, H, W), got {tuple(x.shape)}")
        r = self.unshuffle
        if r == 1:
            return (x + self.tail(self.body(x))).clamp_(0.0, 1.0)
        h, w = x.shape[-2:]
        ph, pw = -h % r, -w % r
        y = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        res = F.pixel_shuffle(self.tail(self.body(F.pixel_unshuffle(y, r))), r)
        return (x + res[..., :h, :w]).clamp_(0.0, 1.0)
