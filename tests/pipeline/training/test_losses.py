"""The training objective: a pixel term plus a temporal term that only sees error not carried by the motion."""

from __future__ import annotations

import pytest
import torch

from pipeline.training.losses import CHARBONNIER_EPS, penalty, sr_loss, temporal_loss


def test_penalties() -> None:
    d = torch.tensor([0.0, 0.3, -0.4])
    assert penalty(d, "l1").item() == pytest.approx(0.7 / 3)
    assert penalty(torch.zeros(4), "charbonnier").item() == pytest.approx(CHARBONNIER_EPS)
    assert penalty(d, "l1", torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(0.3)


def test_temporal_loss_ignores_motion_the_reference_has_and_punishes_flicker() -> None:
    ref = torch.linspace(0, 1, 5).view(1, 5, 1, 1, 1).expand(2, 5, 3, 8, 8)
    shifted = ref + 0.1  # same motion, constant offset: a pixel error, no temporal error
    assert temporal_loss(shifted, ref, "l1").item() == pytest.approx(0.0, abs=1e-6)
    flicker = ref + 0.1 * (torch.arange(5) % 2).view(1, 5, 1, 1, 1)
    assert temporal_loss(flicker, ref, "l1").item() == pytest.approx(0.1, abs=1e-6)
    assert temporal_loss(ref[:, :1], ref[:, :1]).item() == 0.0


def _panning_clip(scene: torch.Tensor, frames: int, step: int, size: int) -> torch.Tensor:
    """(1, frames, 3, size, size) windows of `scene` (3, H, W), moving `step` pixels right per frame."""
    return torch.stack([scene[:, 8 : 8 + size, 8 + i * step : 8 + i * step + size] for i in range(frames)]).unsqueeze(0)


def test_temporal_loss_lets_error_move_with_the_picture_and_punishes_error_that_stays_put() -> None:
    gen = torch.Generator().manual_seed(0)
    # Smooth texture: the flow estimator needs gradients and its warp is bilinear.
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 96, 120, generator=gen), 5, 1, 2)[0]
    blemish = 0.1 * torch.nn.functional.avg_pool2d(torch.randn(1, 3, 96, 120, generator=gen), 3, 1, 1)[0]
    ref = _panning_clip(scene, 4, 2, 64)
    carried = _panning_clip(scene + blemish, 4, 2, 64)  # error glued to the content: no temporal error
    stuck = ref + blemish[:, :64, :64]  # the same error fixed on the screen while the scene pans
    moving, still = temporal_loss(carried, ref, "l1").item(), temporal_loss(stuck, ref, "l1").item()
    assert moving < 0.2 * still
    assert penalty(carried - ref, "l1").item() == pytest.approx(penalty(stuck - ref, "l1").item(), rel=0.2)


def test_sr_loss_adds_the_weighted_terms_and_checks_shapes() -> None:
    ref = torch.rand(1, 4, 3, 8, 8)
    out = ref + 0.05 * torch.randn(1, 4, 3, 8, 8)
    plain = sr_loss(out, ref, "l1", 0.0)
    both = sr_loss(out, ref, "l1", 0.5)
    assert both.item() == pytest.approx(plain.item() + 0.5 * temporal_loss(out, ref, "l1").item())
    with pytest.raises(ValueError, match="matching"):
        sr_loss(out[0], ref[0], "l1", 0.5)
