"""Degradations: BI is the metrics' D on the 8-bit grid; the realistic track blurs, adds noise
and really goes through H.264."""

from __future__ import annotations

import pytest
import torch

from pipeline.metrics import bicubic_downscale, psnr
from pipeline.training.degrade import (
    RealisticDegradation,
    bicubic_lr,
    gaussian_blur,
    h264_round_trip,
    interlace,
    quantize,
    realistic_lr,
)


def _clip(t: int = 4, h: int = 64, w: int = 96) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, h // 8, w // 8, generator=gen)
    frames = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear").expand(t, -1, -1, -1)
    return frames + 0.1 * torch.rand(t, 3, h, w, generator=gen).clamp(0, 0.9)


def test_bicubic_lr_is_quantised_d() -> None:
    hr = _clip()
    lr = bicubic_lr(hr, 4)
    assert lr.shape == (4, 3, 16, 24)
    assert torch.equal(lr, quantize(bicubic_downscale(hr, (16, 24))))
    assert torch.equal(lr * 255, (lr * 255).round())
    with pytest.raises(ValueError, match="multiple of the scale"):
        bicubic_lr(hr[..., :63, :], 4)


def test_gaussian_blur_keeps_a_constant_and_smooths_an_edge() -> None:
    flat = torch.full((1, 3, 20, 20), 0.4)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat, atol=1e-6)
    edge = torch.zeros(1, 1, 20, 20)
    edge[..., 10:] = 1.0
    blurred = gaussian_blur(edge, 1.0)
    assert 0.0 < blurred[0, 0, 5, 9] < 0.5 < blurred[0, 0, 5, 10] < 1.0


def test_h264_round_trip_is_lossy_but_close_and_keeps_odd_sizes() -> None:
    clip = _clip(5, 36, 50)[..., :35, :49]
    out = h264_round_trip(clip.clamp(0, 1), crf=30)
    assert out.shape == clip.shape
    assert not torch.equal(out, clip)
    assert psnr(out, clip.clamp(0, 1)) > 25


def test_interlace_weaves_the_next_frame_into_odd_lines() -> None:
    clip = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    woven = interlace(clip)
    assert woven[0, 0, 0, 0] == 0 and woven[0, 0, 1, 0] == 1
    assert torch.equal(woven[-1], clip[-1])


def test_realistic_lr_differs_from_bi_and_is_reproducible() -> None:
    hr = _clip()
    spec = RealisticDegradation(blur_sigma=(0.8, 0.8), noise_sigma=(2.0, 2.0), crf=(28, 28))
    a = realistic_lr(hr.clamp(0, 1), 4, torch.Generator().manual_seed(1), spec)
    b = realistic_lr(hr.clamp(0, 1), 4, torch.Generator().manual_seed(1), spec)
    assert a.shape == (4, 3, 16, 24)
    assert torch.equal(a, b)
    bi = bicubic_lr(hr.clamp(0, 1), 4)
    assert 15 < psnr(a, bi) < 45  # degraded, not destroyed
