"""LightSR: the compact per-frame CNN (local texture and edges), HR -> HR refinement."""

from __future__ import annotations

import torch
from torch import nn


class LightSR(nn.Module):
    """(N, 3, H, W) in [0, 1] -> same shape: input plus a learned residual, clamped to [0, 1]."""

    def __init__(self, features: int, n_convs: int) -> None:
        super().__init__()
        if features < 1 or n_convs < 0:
            raise ValueError(f"bad LightSR settings: features={features} n_convs={n_convs}")
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        for _ in range(n_convs):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(features, 3, 3, padding=1)
        # Honest start: a fresh model returns its input unchanged.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"LightSR expects (N, 3, H, W), got {tuple(x.shape)}")
        return (x + self.tail(self.body(x))).clamp_(0.0, 1.0)
