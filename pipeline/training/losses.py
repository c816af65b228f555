"""Training losses: a pixel loss plus a motion-compensated temporal-consistency loss.

With O the output, Y the HR reference, frames (B, T, 3, H, W), E = O − Y the error, W_t the
backward warp that aligns frame t−1 to frame t along the optical flow of the *reference*
(pipeline/quality/flow.py), and M_t its non-occlusion mask:

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
import torch.nn.functional as F

from pipeline.quality import flow

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


@torch.no_grad()
def input_motion(motion: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """F_t (frame t -> t−1) and M_t at HR `size` from the strong model's LR flow (B, T, 4, h, w)
    (pipeline/models/strong.py, `estimate_motion`): the flow the model aligns by, upsampled with
    its vectors scaled; a fraction of the cost of estimating it again on the HR reference."""
    b, t, _, h, w = motion.shape
    ratio = torch.tensor((size[1] / w, size[0] / h), device=motion.device).view(1, 2, 1, 1)

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.reshape(b * (t - 1), 2, h, w).float(), size=size, mode="bilinear") * ratio

    to_prev, from_prev = up(motion[:, 1:, 2:4]), up(motion[:, :-1, 0:2])
    return to_prev, flow.occlusion_mask(to_prev, from_prev)


def temporal_loss(
    out: torch.Tensor, ref: torch.Tensor, kind: PixelLoss = "charbonnier", motion: torch.Tensor | None = None
) -> torch.Tensor:
    """ρ_M(E_t − W_t(E_{t−1})) over consecutive frames of (B, T, C, H, W) clips; 0 for one-frame
    clips. The flow: the input's (`motion`, LR) when given, else estimated on the reference."""
    if out.shape[1] < 2:
        return out.new_zeros(())
    b, t = out.shape[:2]
    to_prev, mask = reference_motion(ref) if motion is None else input_motion(motion, out.shape[-2:])
    error = out - ref
    cur = error[:, 1:].reshape(b * (t - 1), *out.shape[2:])
    prev = error[:, :-1].reshape(b * (t - 1), *out.shape[2:])
    return penalty(cur - flow.warp(prev, to_prev), kind, mask)


def sr_loss(
    out: torch.Tensor,
    ref: torch.Tensor,
    kind: PixelLoss,
    temporal_weight: float,
    motion: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training objective L above, for (B, T, C, H, W) outputs and references."""
    if out.shape != ref.shape or out.dim() != 5:
        raise ValueError(f"expected matching (B, T, C, H, W) tensors, got {tuple(out.shape)} and {tuple(ref.shape)}")
    loss = penalty(out - ref, kind)
    if temporal_weight:
        loss = loss + temporal_weight * temporal_loss(out, ref, kind, motion)
    return loss
