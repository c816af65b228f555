"""Compute cost of a model per output frame, counted by torch on the meta device (no memory, no data)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.models.registry import Kind, get_spec

COUNT_FRAMES = 8  # the strong model's attention cost depends on the clip length: count a typical pass


def parameters(kind: Kind, name: str, scale: int) -> tuple[int, int]:
    """(parameter count, temporal radius R) of a registered model, built on the meta device."""
    with torch.device("meta"):  # shapes only: the large size costs no memory
        model = get_spec(kind, name).build(scale)
    return sum(p.numel() for p in model.parameters()), getattr(model, "temporal_radius", 0)


def gmac_per_frame(kind: Kind, name: str, scale: int, lr_size: tuple[int, int] = (90, 160)) -> float:
    """Multiply-accumulates (1e9) per output frame for LR input of `lr_size` (h, w): the strong
    model on a pass of COUNT_FRAMES frames, the light model on one HR frame."""
    h, w = lr_size
    with torch.device("meta"):
        model = get_spec(kind, name).build(scale)
        x = torch.empty(1, COUNT_FRAMES, 3, h, w) if kind == "strong" else torch.empty(1, 3, h * scale, w * scale)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    frames = COUNT_FRAMES if kind == "strong" else 1
    return counter.get_total_flops() / 2 / frames / 1e9
