"""Optical flow on synthetic texture with known motion (pipeline/quality/flow.py)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from pipeline.quality.flow import estimate_flow, occlusion_mask, warp

Coords = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
H, W = 96, 128
BORDER = 16  # accuracy is checked away from the borders, where part of the window has no data


def texture(coords: Coords = lambda x, y: (x, y), h: int = H, w: int = W) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1]: a sum of oriented sinusoids evaluated at coords(x, y), so a moved
    copy is exact at any sub-pixel offset (no interpolation in the test data)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    x, y = coords(xs, ys)
    # 40 waves per channel: frequency 0.02-0.52 rad/px (weaker when higher), any direction and phase.
    freq, angle, phase = torch.rand(3, 3, 40, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    freq, angle, phase = 0.02 + 0.5 * freq, 2 * math.pi * angle, 2 * math.pi * phase
    waves = torch.sin((freq * (x * angle.cos() + y * angle.sin())) + phase) / (1 + 4 * freq)
    return (0.5 + 0.04 * waves.sum(1))[None].clamp(0, 1).float()


def interior(x: torch.Tensor) -> torch.Tensor:
    return x[..., BORDER:-BORDER, BORDER:-BORDER]


def endpoint_errors(flow: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return interior((flow[0] - truth).norm(dim=0)).flatten()


def test_sub_pixel_translation() -> None:
    dx, dy = 1.3, -0.7
    source, target = texture(), texture(lambda x, y: (x + dx, y + dy))  # target(p) = source(p + d)
    flow = estimate_flow(target, source)
    errors = endpoint_errors(flow, torch.tensor([dx, dy]).view(2, 1, 1))
    assert errors.median() < 0.08 and errors.max() < 0.5
    assert interior(flow[0, 0]).mean() == pytest.approx(dx, abs=0.02)  # no bias on average
    assert interior(flow[0, 1]).mean() == pytest.approx(dy, abs=0.02)
    # Warping the source by the flow aligns it with the target.
    assert interior(warp(source, flow) - target).abs().mean() < 0.1 * interior(source - target).abs().mean()


def test_larger_translation_through_the_pyramid() -> None:
    dx, dy = 9.6, 5.2
    flow = estimate_flow(texture(lambda x, y: (x + dx, y + dy)), texture())
    errors = endpoint_errors(flow, torch.tensor([dx, dy]).view(2, 1, 1))
    assert errors.median() < 0.15 and torch.quantile(errors, 0.99) < 1.0


def test_small_affine_motion() -> None:
    """Rotation by 2 degrees, zoom 1.02 about the centre, and a shift."""
    angle, zoom, cx, cy = math.radians(2.0), 1.02, W / 2, H / 2

    def affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, v = x - cx, y - cy
        return (
            cx + zoom * (math.cos(angle) * u - math.sin(angle) * v) + 0.5,
            cy + zoom * (math.sin(angle) * u + math.cos(angle) * v) - 0.3,
        )

    flow = estimate_flow(texture(affine), texture())
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    ax, ay = affine(xs, ys)
    truth = torch.stack((ax - xs, ay - ys)).float()  # up to ~3.6 px at the corners
    errors = endpoint_errors(flow, truth)
    assert errors.median() < 0.08 and torch.quantile(errors, 0.99) < 0.3


def test_warp_of_a_translated_image() -> None:
    """An integer shift is exact (bilinear weights 0/1); a sub-pixel one close."""
    image = texture()
    shifted = texture(lambda x, y: (x + 3, y - 2))
    flow = torch.tensor([3.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, H, W)
    assert torch.allclose(interior(warp(image, flow)), interior(shifted), atol=1e-6)
    half = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1).expand(1, 2, H, W)
    moved = texture(lambda x, y: (x + 0.5, y + 0.25))
    assert interior(warp(image, half) - moved).abs().max() < 0.01


def test_occlusion_mask_excludes_a_disoccluded_border() -> None:
    """The content pans left by 6 px: the target's last 6 columns come from outside the source."""
    shift = 6.0
    source, target = texture(), texture(lambda x, y: (x + shift, y))
    forward, backward = estimate_flow(target, source), estimate_flow(source, target)
    mask = occlusion_mask(forward, backward)[0, 0]
    assert not mask[:, -int(shift) :].any()
    assert mask[4:-4, 4 : -int(shift) - 4].float().mean() > 0.97
    # Inconsistent flows (forward and backward disagree) are masked out too.
    assert not occlusion_mask(forward, forward).any()


def test_zero_motion_and_shapes() -> None:
    image = texture()
    assert estimate_flow(image, image).abs().max() < 1e-4  # grid_sample's coordinates round in float32
    assert occlusion_mask(torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 8, 8)).all()
    with pytest.raises(ValueError, match="same shape"):
        estimate_flow(image, image[..., :-1])
