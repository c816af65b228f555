"""Degradations: BI is the metrics' D on the 8-bit grid; the realistic track downscales with other
tools' kernels, adds noise, bleeds chroma, damages like tape and really goes through the codecs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.quality.metrics import bicubic_downscale, psnr
from pipeline.training.degrade import (
    KERNELS,
    RealisticDegradation,
    bicubic_lr,
    chroma_degrade,
    codec_round_trip,
    gaussian_blur,
    h264_round_trip,
    interlace,
    quantize,
    realistic_lr,
    resample,
    tape_damage,
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


@pytest.mark.parametrize(
    ("kernel", "antialias", "mode"),
    [("bicubic-0.5", True, "bicubic"), ("bilinear", True, "bilinear"), ("area", True, "area"),
     ("bicubic-0.75", False, "bicubic"), ("bilinear", False, "bilinear")],
)  # fmt: skip
def test_kernels_match_torchs_own_downscaling(kernel: str, antialias: bool, mode: str) -> None:
    """Where torch has the same filter (its antialiased bicubic is a = -0.5, its plain one -0.75),
    the resampling matrices agree with it away from the borders (torch renormalises edge taps)."""
    hr = _clip(2, 64, 96)
    ours = resample(hr, (16, 24), kernel, antialias)
    options = {} if mode == "area" else {"antialias": antialias, "align_corners": False}
    theirs = F.interpolate(hr, size=(16, 24), mode=mode, **options)
    assert (ours - theirs)[..., 2:-2, 2:-2].abs().max() < 1e-5


def test_every_kernel_keeps_a_constant_and_they_differ() -> None:
    flat = torch.full((1, 3, 40, 40), 0.3)
    stripes = _clip(1, 40, 40)
    outs = []
    for kernel in KERNELS:
        for antialias in (True, False):
            assert torch.allclose(resample(flat, (10, 10), kernel, antialias), flat[..., :10, :10], atol=1e-6)
            outs.append(resample(stripes, (10, 10), kernel, antialias))
    distinct = {tuple(o.flatten()[:50].mul(1e4).round().tolist()) for o in outs}
    assert len(distinct) >= len(KERNELS) + 3  # area ignores antialias; the rest differ


@pytest.mark.parametrize(("codec", "quality"), [("h264", 30), ("hevc", 30), ("mpeg2", 8), ("mpeg4", 8)])
def test_codec_round_trips_are_lossy_but_close(codec: str, quality: int) -> None:
    clip = _clip(5, 36, 50)[..., :35, :49].clamp(0, 1)
    out = codec_round_trip(clip, codec, quality)
    assert out.shape == clip.shape
    assert 22 < psnr(out, clip) < 60


def test_chroma_degrade_keeps_luma_and_blurs_colour() -> None:
    clip = _clip(1, 32, 48).clamp(0, 1)
    out = chroma_degrade(clip, (2, 4), bleed=1.5, shift=0.7)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((out * luma).sum(1), (clip * luma).sum(1), atol=1e-5)
    colour = clip - (clip * luma).sum(1, keepdim=True)
    colour_out = out - (out * luma).sum(1, keepdim=True)
    assert colour_out.diff(dim=-1).abs().mean() < 0.6 * colour.diff(dim=-1).abs().mean()


def test_tape_damage_shifts_lines_and_is_seeded() -> None:
    clip = _clip(3, 48, 64).clamp(0, 1)
    a = tape_damage(clip, torch.Generator().manual_seed(2))
    b = tape_damage(clip, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and a.shape == clip.shape
    # The head-switching band at the bottom departs far more than the picture above it.
    top = (a - clip)[..., :20, :].abs().mean()
    bottom = (a - clip)[..., -2:, :].abs().mean()
    assert bottom > 2 * top > 0


def test_a_realistic_spec_without_options_is_exactly_its_steps() -> None:
    """One kernel, one codec at one quality, no optional step: the track is that chain and no more."""
    hr = _clip(2, 32, 48).clamp(0, 1)
    spec = RealisticDegradation(kernels=("area",), codecs=("mpeg2",), qscale=(2, 2), noise_sigma=(0, 0),
                                blur_sigma=(0, 0), chroma_probability=0, tape_probability=0, interlace_probability=0)  # fmt: skip
    plain = realistic_lr(hr, 2, torch.Generator().manual_seed(0), spec)
    expected = codec_round_trip(quantize(resample(hr, (16, 24), "area")), "mpeg2", 2)
    assert torch.equal(plain, expected)


@pytest.mark.parametrize("codec", ["h264", "hevc", "mpeg2", "mpeg4"])
def test_codecs_take_frames_smaller_than_a_macroblock_row(codec: str) -> None:
    clip = _clip(2, 24, 40)[..., :18, :30].clamp(0, 1)  # below x265's 64 px CTU
    assert codec_round_trip(clip, codec, 20 if codec in ("h264", "hevc") else 4).shape == clip.shape
