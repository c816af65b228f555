"""A model that runs out of memory as a GPU does, for the tiling fallback's tests."""

from __future__ import annotations

import torch
from torch import nn


class PixelBudget(nn.Module):
    """A real model that raises torch.OutOfMemoryError, CUDA's error, on frames above a pixel budget."""

    def __init__(self, model: nn.Module, budget: int) -> None:
        super().__init__()
        self.model, self.budget, self.refused = model, budget, 0
        self.temporal_radius = getattr(model, "temporal_radius", 0)
        self.spatial_radius, self.spatial_align = model.spatial_radius, model.spatial_align

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        if x.shape[-2] * x.shape[-1] > self.budget:
            self.refused += 1
            raise torch.OutOfMemoryError(f"{x.shape[-2]}x{x.shape[-1]} frames are above the budget")
        return self.model(x, *args)
