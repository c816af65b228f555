"""Training losses: a pixel loss plus a temporal-consistency loss.

With O the output and Y the HR reference, frames (B, T, 3, H, W), and ΔX_t = X_t − X_{t−1}:

    L = ρ(O − Y) + λ · ρ(ΔO − ΔY)

ρ is the mean Charbonnier penalty sqrt(x² + ε²) ("l1": mean |x|, "mse": mean x²). The temporal term
penalises change between frames that the reference does not have — flicker, crawling
texture — without asking for less motion than the scene holds; λ is `temporal_weight`.
"""

from __future__ import annotations

from typing import Literal

import torch

PixelLoss = Literal["charbonnier", "l1", "mse"]
CHARBONNIER_EPS = 1e-3


def penalty(diff: torch.Tensor, kind: PixelLoss) -> torch.Tensor:
    if kind == "l1":
        return diff.abs().mean()
    if kind == "mse":
        return (diff * diff).mean()
    return torch.sqrt(diff * diff + CHARBONNIER_EPS**2).mean()


def temporal_loss(out: torch.Tensor, ref: torch.Tensor, kind: PixelLoss = "charbonnier") -> torch.Tensor:
    """ρ(ΔO − ΔY) over consecutive frames of (B, T, C, H, W) clips; 0 for one-frame clips."""
    if out.shape[1] < 2:
        return out.new_zeros(())
    return penalty((out[:, 1:] - out[:, :-1]) - (ref[:, 1:] - ref[:, :-1]), kind)


def sr_loss(out: torch.Tensor, ref: torch.Tensor, kind: PixelLoss, temporal_weight: float) -> torch.Tensor:
    """The training objective L above, for (B, T, C, H, W) outputs and references."""
    if out.shape != ref.shape or out.dim() != 5:
        raise ValueError(f"expected matching (B, T, C, H, W) tensors, got {tuple(out.shape)} and {tuple(ref.shape)}")
    loss = penalty(out - ref, kind)
    if temporal_weight:
        loss = loss + temporal_weight * temporal_loss(out, ref, kind)
    return loss
