"""Training losses: a pixel loss plus a motion-compensated temporal-consistency loss.

With O the output, Y the HR reference, frames (B, T, 3, H, W), E = O − Y the error, W_t the
backward warp that aligns frame t−1 to frame t along the optical flow of the *reference*
(pipeline/flow.py), and M_t its non-occlusion mask:

    L = ρ(O − Y) + λ · ρ_M(E_t − W_t(E_{t−1}))
      = ρ(O − Y) + λ · ρ_M((O_t − W_t O_{t−1}) − (Y_t − W_t Y_{t−1}))     (W_t is linear)

ρ is the mean Charbonnier penalty sqrt(x² + ε²) ("l1": mean |x|, "mse": mean x²); ρ_M the same
mean over the pixels M_t keeps. The temporal term asks the error to move with the picture: an
error that stays put while the scene moves (or one that flickers) is penalised, one that a
camera pan carries along is not. It is the training-time form of the benchmark's `ewarp`
(same flow, warp and mask), minus what the reference itself scores; λ is `temporal_weight`.
"""

from __future__ import annotations

from typing import Literal

import torch

from pipeline import flow

PixelLoss = Literal["charbonnier", "l1", "mse"]
CHARBONNIER_EPS = 1e-3


def _elementwise(diff: torch.Tensor, kind: PixelLoss) -> torch.Tensor:
    if kind == "l1":
        return diff.abs()
    if kind == "mse":
        return diff * diff
    return torch.sqrt(diff * diff + CHARBONNIER_EPS**2)


def penalty(diff: torch.Tensor, kind: PixelLoss, mask: torch.Tensor | None = None) -> torch.Tensor:
    """ρ: the mean penalty of `diff`, over the positions `mask` (broadcastable, 0/1) keeps if given."""
    values = _elementwise(diff, kind)
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


@torch.no_grad()
def reference_motion(ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow F_t (frame t -> t−1) and mask M_t of the reference's consecutive pairs, (B·(T−1), ...)."""
    b, t = ref.shape[:2]
    cur = ref[:, 1:].reshape(b * (t - 1), *ref.shape[2:]).float()
    prev = ref[:, :-1].reshape(b * (t - 1), *ref.shape[2:]).float()
    with torch.autocast(ref.device.type, enabled=False):
        to_prev = flow.estimate_flow(cur, prev)
        mask = flow.occlusion_mask(to_prev, flow.estimate_flow(prev, cur))
    return to_prev, mask


def temporal_loss(out: torch.Tensor, ref: torch.Tensor, kind: PixelLoss = "charbonnier") -> torch.Tensor:
    """ρ_M(E_t − W_t(E_{t−1})) over consecutive frames of (B, T, C, H, W) clips; 0 for one-frame clips."""
    if out.shape[1] < 2:
        return out.new_zeros(())
    b, t = out.shape[:2]
    to_prev, mask = reference_motion(ref)
    error = out - ref
    cur = error[:, 1:].reshape(b * (t - 1), *out.shape[2:])
    prev = error[:, :-1].reshape(b * (t - 1), *out.shape[2:])
    return penalty(cur - flow.warp(prev, to_prev), kind, mask)


def sr_loss(out: torch.Tensor, ref: torch.Tensor, kind: PixelLoss, temporal_weight: float) -> torch.Tensor:
    """The training objective L above, for (B, T, C, H, W) outputs and references."""
    if out.shape != ref.shape or out.dim() != 5:
        raise ValueError(f"expected matching (B, T, C, H, W) tensors, got {tuple(out.shape)} and {tuple(ref.shape)}")
    loss = penalty(out - ref, kind)
    if temporal_weight:
        loss = loss + temporal_weight * temporal_loss(out, ref, kind)
    return loss
