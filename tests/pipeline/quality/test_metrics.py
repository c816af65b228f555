"""Metrics on hand-checkable cases (definitions: docs/manifest.md, "Metric definitions")."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.strong import bicubic_upscale
from pipeline.quality import flow, metrics
from pipeline.quality.metrics import bicubic_downscale
from tests.pipeline.quality.test_flow import texture


def smooth_clip(frames: int = 4, h: int = 24, w: int = 32, shift: float = 0.0) -> torch.Tensor:
    """Low-frequency colour ramps, panning by `shift` pixels per frame, in [0.2, 0.8]."""
    y = torch.linspace(0, 1, h).view(1, 1, h, 1)
    x = torch.linspace(0, 1, w).view(1, 1, 1, w)
    t = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1)
    phase = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    return 0.5 + 0.3 * torch.sin(2.0 * x + 1.5 * y + phase + shift * t / w)


def test_identical_frames_have_zero_tfs() -> None:
    lr = smooth_clip(1).repeat(5, 1, 1, 1)
    assert metrics.tfs(bicubic_upscale(lr, 2), lr, 2) == 0.0
    assert metrics.tfs(torch.full((5, 3, 48, 64), 0.3), lr, 2) == 0.0


def test_bicubic_output_is_faithful() -> None:
    lr = smooth_clip(shift=2.0)
    out = bicubic_upscale(lr, 4)
    assert metrics.tfs(out, lr, 4) < 1e-5
    assert metrics.detail_gain(out, lr, 4) < 1e-7
    assert metrics.lr_psnr(out, lr, 4) > 35.0


def test_flicker_raises_tfs_by_the_expected_amount() -> None:
    lr = smooth_clip(1).repeat(6, 1, 1, 1)  # a static shot: the denominator is the 1/255 floor
    sign = torch.tensor([(-1.0) ** t for t in range(6)]).view(6, 1, 1, 1)
    out = bicubic_upscale(lr, 2) + 0.02 * sign
    assert metrics.tfs(out, lr, 2) == pytest.approx(0.04 * 255, rel=1e-4)
    moving = smooth_clip(6, shift=3.0)
    clean = metrics.tfs(bicubic_upscale(moving, 2), moving, 2)
    assert metrics.tfs(bicubic_upscale(moving, 2) + 0.02 * sign, moving, 2) > clean + 1.0


def test_constant_offset_lowers_lr_psnr_as_expected() -> None:
    out = smooth_clip(3, 48, 64)
    lr = bicubic_downscale(out, (12, 16))  # D(out) == lr exactly
    assert metrics.lr_psnr(out, lr, 4) == 100.0
    for offset, expected_db in ((0.01, 40.0), (0.1, 20.0)):
        assert metrics.lr_psnr(out + offset, lr, 4) == pytest.approx(expected_db, abs=1e-3)


def test_worst_frames_point_at_the_damage() -> None:
    """A 12-frame segment (more than one chunk): a patch that jumps in at frame 9 and stays is an
    unexplained change between frames 8 and 9 only; a patch on frame 4 alone departs from frame 4's input."""
    lr = smooth_clip(12, shift=2.0)
    out = bicubic_upscale(lr, 2)
    jump, spot = out.clone(), out.clone()
    jump[9:, :, :8, :8] += 0.3
    spot[4, :, :8, :8] += 0.3
    tfs, tfs_frame = metrics.tfs_and_worst(jump, lr, 2)
    lr_psnr, psnr_frame = metrics.lr_psnr_and_worst(spot, lr, 2)
    assert (tfs_frame, psnr_frame) == (9, 4)
    assert (tfs, lr_psnr) == (metrics.tfs(jump, lr, 2), metrics.lr_psnr(spot, lr, 2))
    assert tfs > metrics.tfs(out, lr, 2) and lr_psnr < metrics.lr_psnr(out, lr, 2)
    assert metrics.tfs_and_worst(out[:1], lr[:1], 2)[1] is None  # one frame: no pair


def test_single_frame_tfs_is_nan() -> None:
    lr = smooth_clip(1)
    assert math.isnan(metrics.tfs(bicubic_upscale(lr, 2), lr, 2))


def test_detail_gain_and_light_delta() -> None:
    lr = smooth_clip()
    base = bicubic_upscale(lr, 2)
    assert metrics.detail_gain(base + 0.05, lr, 2) == pytest.approx(0.05, rel=1e-4)
    light = base.clone()
    light[:, :, :12] += 0.1  # a quarter of the rows
    assert metrics.light_delta(light, base) == pytest.approx(0.025, rel=1e-4)
    assert metrics.light_delta(base, base) == 0.0


def test_psnr_and_ssim() -> None:
    a = smooth_clip(2, 32, 32)
    assert metrics.psnr(a, a) == 100.0
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-3)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    torch.manual_seed(0)
    noisy = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    value = metrics.ssim(a, noisy)
    assert 0.0 < value < 0.9
    assert metrics.ssim(noisy, a) == pytest.approx(value, abs=1e-6)


def test_long_segments_are_chunked_consistently() -> None:
    lr = smooth_clip(19, 8, 8, shift=1.0)  # more frames than one chunk, odd count
    torch.manual_seed(0)
    out = bicubic_upscale(lr, 2) + 0.01 * torch.randn(19, 3, 16, 16)
    out[8] += 0.05  # the pairs (7, 8), straddling the first two chunks, and (8, 9) change most
    d_out, d_in = out[1:] - out[:-1], bicubic_upscale(lr[1:] - lr[:-1], 2)
    expected = (d_out - d_in).abs().mean().item() / max(d_in.abs().mean().item(), 1 / 255)
    found = metrics.bicubic_metrics(out, lr, 2)
    assert found.tfs == pytest.approx(expected, rel=1e-5)
    assert found.tfs_worst == 1 + int((d_out - d_in).abs().sum((1, 2, 3)).argmax()) and found.tfs_worst in (8, 9)
    assert found.detail_gain == pytest.approx((out - bicubic_upscale(lr, 2)).abs().mean().item(), rel=1e-5)


def panning_texture(frames: int = 6) -> torch.Tensor:
    """Textured frames moving by a sub-pixel (0.7, -0.4) px per frame."""
    return torch.cat([texture(lambda x, y, t=t: (x + 0.7 * t, y - 0.4 * t)) for t in range(frames)])


def test_ewarp_of_the_reference_itself_is_near_zero() -> None:
    ref = panning_texture()
    assert metrics.ewarp(ref, ref) < 2e-5  # flow and bilinear interpolation error only
    still = ref[:1].repeat(3, 1, 1, 1)
    assert metrics.ewarp(still, still) < 1e-10


def test_ewarp_grows_with_flicker() -> None:
    ref = panning_texture()
    clean = metrics.ewarp(ref, ref)
    # A brightness flicker of +-0.02 moves every pixel by 0.04 between frames: 3 channels * 0.04^2.
    sign = torch.tensor([(-1.0) ** t for t in range(6)]).view(6, 1, 1, 1)
    assert metrics.ewarp(ref + 0.02 * sign, ref) == pytest.approx(clean + 3 * 0.04**2, rel=0.02)
    # Independent noise per frame (sigma 0.02): up to 2 * 3 * 0.02^2 (less: the warp interpolates the noise).
    torch.manual_seed(0)
    noisy = ref + 0.02 * torch.randn_like(ref)
    assert 0.5 * 6 * 0.02**2 < metrics.ewarp(noisy, ref) < 6 * 0.02**2
    # Flow and occlusions come from the reference only: the same noise against a still reference
    # is compared pixel for pixel, without interpolation.
    still = ref[:1].repeat(6, 1, 1, 1)
    assert metrics.ewarp(still + (noisy - ref), still) == pytest.approx(6 * 0.02**2, rel=0.1)


def test_ewarp_is_a_mean_over_pairs_whatever_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = panning_texture(5)
    torch.manual_seed(1)
    out = ref + 0.01 * torch.randn_like(ref)
    per_pair = [metrics.ewarp(out[t - 1 : t + 1], ref[t - 1 : t + 1]) for t in range(1, 5)]
    monkeypatch.setattr(metrics, "FLOW_CHUNK_PAIRS", 3)
    assert metrics.ewarp(out, ref) == pytest.approx(sum(per_pair) / 4, rel=1e-5)
    assert math.isnan(metrics.ewarp(out[:1], ref[:1]))


def panned_photo(frames: int = 6, dx: float = 0.7, dy: float = -0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """HR frames of a stable picture panning (dx, dy) HR px per frame, and their LR input at x2."""
    hr = torch.cat([texture(lambda x, y, t=t: (x + dx * t, y + dy * t)) for t in range(frames)])
    return hr, bicubic_downscale(hr, (hr.shape[2] // 2, hr.shape[3] // 2))


def test_flicker_of_bicubic_is_zero() -> None:
    lr = smooth_clip(12, shift=2.0)  # two chunks
    assert metrics.flicker(bicubic_upscale(lr, 2), lr, 2) == 0.0
    _, lr = panned_photo()
    assert metrics.flicker(bicubic_upscale(lr, 2), lr, 2) == 0.0


def test_flicker_keeps_stable_detail_low_and_catches_detail_that_changes() -> None:
    hr, lr = panned_photo()
    # The true HR frames: detail bicubic lacks, moving with the picture. Only the flow's and the warp's
    # errors remain (as ewarp's of the reference itself).
    stable = metrics.flicker(hr, lr, 2)
    assert stable < 3e-5
    # A brightness flicker of +-0.02 moves every pixel's added detail by 0.04 between frames: 3 channels * 0.04^2.
    sign = torch.tensor([(-1.0) ** t for t in range(6)]).view(6, 1, 1, 1)
    assert metrics.flicker(hr + 0.02 * sign, lr, 2) == pytest.approx(stable + 3 * 0.04**2, rel=0.01)
    # Independent noise per frame (sigma 0.02): 3 * 0.02^2 times 1 + the bilinear weights' squares (1/4..1).
    torch.manual_seed(0)
    assert 1.25 * 3 * 0.02**2 < metrics.flicker(hr + 0.02 * torch.randn_like(hr), lr, 2) < 2 * 3 * 0.02**2
    # Sharpening bicubic: the same every frame is detail that moves with the picture; a strength that
    # alternates between 0 and 1 (the same mean) is flicker.
    b = bicubic_upscale(lr, 2)
    detail = b - F.avg_pool2d(F.pad(b, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    alternating = torch.tensor([0.0, 1.0] * 3).view(6, 1, 1, 1)
    assert metrics.flicker(b + alternating * detail, lr, 2) > 4 * metrics.flicker(b + 0.5 * detail, lr, 2)


def test_flicker_ignores_what_the_mask_leaves_out() -> None:
    """A pan of 3 LR px per frame uncovers a strip at the right edge: whatever the output holds there
    counts for nothing; the same change where the mask holds raises flicker."""
    hr, lr = panned_photo(2, dx=6.0, dy=0.0)
    forward = flow.estimate_flow(lr[1:], lr[:1])
    mask = flow.occlusion_mask(forward, flow.estimate_flow(lr[:1], lr[1:]))
    hidden = F.interpolate((~mask).float(), scale_factor=2, mode="nearest").bool().expand(-1, 3, -1, -1)
    assert 0 < hidden.float().mean() < 0.2 and hidden[..., -1].all()  # the strip the motion uncovers
    torch.manual_seed(0)
    garbage = torch.rand(1, 3, *hr.shape[2:])
    clean = metrics.flicker(hr, lr, 2)
    out = hr.clone()
    out[1:][hidden] = garbage[hidden]
    assert metrics.flicker(out, lr, 2) == pytest.approx(clean, rel=1e-5)
    out = hr.clone()
    out[1:, :, :, :8][~hidden[..., :8]] = garbage[..., :8][~hidden[..., :8]]  # as much, where the mask holds
    assert metrics.flicker(out, lr, 2) > clean + 0.01


def test_flicker_is_a_mean_over_pairs_whatever_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    hr, lr = panned_photo(11)
    torch.manual_seed(1)
    out = hr + 0.01 * torch.randn_like(hr)
    out[8, :, 8:24, 8:24] += 0.2  # the pairs (7, 8), straddling two chunks of 4, and (8, 9)
    per_pair = [metrics.flicker(out[t - 1 : t + 1], lr[t - 1 : t + 1], 2) for t in range(1, 11)]
    monkeypatch.setattr(metrics, "CHUNK_FRAMES", 4)
    monkeypatch.setattr(metrics, "FLICKER_PAIRS", 10)  # every pair
    score, worst = metrics.flicker_and_worst(out, lr, 2)
    assert score == pytest.approx(sum(per_pair) / 10, rel=1e-5)
    assert worst == 1 + max(range(10), key=per_pair.__getitem__) and worst in (8, 9)
    assert metrics.flicker_and_worst(out[:1], lr[:1], 2) == (pytest.approx(math.nan, nan_ok=True), None)
    # Sampled: the mean over the pairs taken, spread from the first to the last, straddling pair included.
    monkeypatch.setattr(metrics, "FLICKER_PAIRS", 4)
    assert metrics.flicker_pairs(11) == [1, 4, 7, 10] and metrics.flicker_pairs(5) == [1, 2, 3, 4]
    monkeypatch.setattr(metrics, "CHUNK_FRAMES", 7)  # frame 7 opens the second chunk: the pair (6, 7) straddles
    score, worst = metrics.flicker_and_worst(out, lr, 2)
    taken = [per_pair[t - 1] for t in (1, 4, 7, 10)]
    assert score == pytest.approx(sum(taken) / 4, rel=1e-5)
    assert worst == (1, 4, 7, 10)[max(range(4), key=taken.__getitem__)]


@pytest.mark.parametrize(("dtype", "peak"), [(torch.uint8, 255), (torch.uint16, 65535)])
def test_pixels_measure_as_the_float_frames_they_stand_for(dtype: torch.dtype, peak: int) -> None:
    """The light stage hands the metrics its pixels (a view, never a float copy of the segment)."""
    lr = smooth_clip()
    out = bicubic_upscale(lr, 2).clamp(0.0, 1.0) * 0.9 + 0.05
    pixels = [(frames * peak).round().to(dtype) for frames in (out, lr, out.flip(0))]
    floats = [frames.float() / peak for frames in pixels]
    for fn in (metrics.bicubic_metrics, metrics.lr_psnr_and_worst):
        assert fn(pixels[0], pixels[1], 2) == fn(floats[0], floats[1], 2)
    for fn in (metrics.light_delta, metrics.psnr, metrics.ssim, metrics.ewarp):
        assert fn(pixels[0], pixels[2]) == fn(floats[0], floats[2])


def test_shape_errors() -> None:
    lr = smooth_clip()
    with pytest.raises(ValueError, match="upscaled x3"):
        metrics.lr_psnr(bicubic_upscale(lr, 2), lr, 3)
    with pytest.raises(ValueError, match="upscaled x3"):
        metrics.flicker(bicubic_upscale(lr, 2), lr, 3)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.light_delta(lr, lr[:2])
    with pytest.raises(ValueError, match="float or pixel frames"):
        metrics.psnr(lr.to(torch.int32), lr.to(torch.int32))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.ewarp(lr, lr[:, :, :-1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    lr = smooth_clip(5, shift=2.0)
    out = bicubic_upscale(lr, 2) + 0.01
    for fn in (metrics.tfs, metrics.lr_psnr, metrics.detail_gain):
        assert fn(out.cuda(), lr.cuda(), 2) == pytest.approx(fn(out, lr, 2), rel=1e-4)
    hr, small = panned_photo()
    torch.manual_seed(0)
    noisy = hr + 0.02 * torch.randn_like(hr)
    assert metrics.flicker(noisy.cuda(), small.cuda(), 2) == pytest.approx(metrics.flicker(noisy, small, 2), rel=1e-3)
    assert metrics.ssim(out.cuda(), out.cuda() * 0.9) == pytest.approx(metrics.ssim(out, out * 0.9), abs=1e-5)
