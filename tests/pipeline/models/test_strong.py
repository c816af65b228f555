"""StrongSR: shapes, honest start, motion-aligned attention, and the temporal receptive radius that
seamless stitching relies on."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.strong import AlignedAttention, StrongSR, bicubic_upscale, estimate_motion


def _randomised(model: StrongSR, seed: int = 0) -> StrongSR:
    """Non-zero output branch and attention biases, so the output depends on every part."""
    torch.manual_seed(seed)
    nn.init.normal_(model.recon.weight, std=0.05)
    nn.init.normal_(model.recon.bias, std=0.01)
    for block in model.blocks:
        nn.init.normal_(block.attn.bias, std=0.5)
        nn.init.normal_(block.attn.fuse.weight, std=0.1)
    return model.eval()


def _texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(3, h, w) smooth random texture in [0, 1] (LK flow needs structure at several scales)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=gen)
    fine = torch.rand(1, 3, h, w, generator=gen)
    smooth = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (0.7 * smooth + 0.3 * fine).clamp(0, 1)[0]


def _panned(frames: int, size: tuple[int, int], step: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """(1, frames, 3, h, w): frame t is a crop of one texture moved by t·step (x, y) pixels, so
    frame_{t+1}(p + step) = frame_t(p)."""
    h, w = size
    pad = frames * max(map(abs, step)) + 1
    big = _texture(h + 2 * pad, w + 2 * pad, seed)
    crops = [big[:, pad - t * step[1] : pad - t * step[1] + h, pad - t * step[0] : pad - t * step[0] + w] for t in range(frames)]
    return torch.stack(crops).unsqueeze(0)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("patch", "neighbourhood"), [(1, 1), (1, 3), (2, 3)])
def test_output_shape_and_range(scale: int, patch: int, neighbourhood: int) -> None:
    model = _randomised(
        StrongSR(scale=scale, dim=8, n_blocks=1, heads=2, window=1, patch=patch, neighbourhood=neighbourhood)
    )
    x = torch.rand(2, 3, 3, 9, 11)  # odd sizes: patch 2 pads spatially, then crops
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, 3, 9 * scale, 11 * scale)
    assert y.min() >= 0 and y.max() <= 1


def test_fresh_model_outputs_bicubic() -> None:
    torch.manual_seed(0)
    model = StrongSR(scale=4, dim=8, n_blocks=2, heads=2, window=1).eval()
    x = torch.rand(1, 4, 3, 10, 12)
    with torch.no_grad():
        y = model(x)
    expected = bicubic_upscale(x[0], 4).clamp(0, 1)
    assert torch.equal(y[0], expected)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bicubic_upscale_is_interpolates_bicubic(scale: int, dtype: torch.dtype) -> None:
    torch.manual_seed(scale)
    for shape in [(1, 1, 1, 1), (2, 3, 2, 3), (1, 3, 9, 11), (3, 1, 40, 57)]:
        x = torch.rand(shape, dtype=dtype) * 2 - 0.5  # beyond [0, 1]: unclamped, linear
        expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
        got = bicubic_upscale(x, scale)
        assert got.dtype == dtype and got.is_contiguous()
        assert torch.allclose(got, expected, atol=1e-5 if dtype == torch.float32 else 1e-12), shape


def test_bicubic_upscale_stays_float32_under_autocast() -> None:
    x = torch.rand(2, 3, 12, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = bicubic_upscale(x, 4)
    assert got.dtype == torch.float32
    assert torch.equal(got, bicubic_upscale(x, 4))


def _identity_grids(frames: int, h: int, w: int, window: int) -> dict[int, torch.Tensor]:
    """Sampling grids of zero motion: every neighbour read at the query's own position."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack((xs, ys), -1).expand(2 * frames, h, w, 2)
    return {d: grid for d in range(-window, window + 1) if d}


@pytest.mark.parametrize(("frames", "window"), [(6, 1), (5, 2), (2, 3), (1, 1)])
def test_attention_without_motion_equals_masked_dense_attention(frames: int, window: int) -> None:
    """At zero motion and a 1 x 1 neighbourhood, the aligned attention is plain attention over the
    frames of the band (frames further than `window` masked), plus the learned offset bias."""
    torch.manual_seed(0)
    attn = AlignedAttention(dim=8, heads=2, window=window, neighbourhood=1).eval()
    nn.init.normal_(attn.bias, std=0.5)
    x = torch.randn(2 * frames, 3, 4, 8)  # two clips, (B*T, H, W, C)
    tok = x.view(2, frames, 12, 8).transpose(1, 2).reshape(24, frames, 8)
    q, k, v = attn.qkv(tok).view(24, frames, 3, 2, 4).permute(2, 0, 3, 1, 4)
    idx = torch.arange(frames)
    offset = idx[None, :] - idx[:, None]  # key frame - query frame
    band = offset.abs() <= window
    bias = attn.bias[(offset.clamp(-window, window) + window), 0].permute(2, 0, 1)  # (heads, T, T)
    mask = torch.where(band, bias, torch.tensor(-math.inf))
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(24, frames, 8)
    expected = attn.proj(dense).view(2, 12, frames, 8).transpose(1, 2).reshape(2 * frames, 3, 4, 8)
    with torch.no_grad():
        got = attn(x, frames, window, _identity_grids(frames, 3, 4, window))
    assert torch.allclose(got, expected, atol=1e-5)


def test_estimate_motion_finds_a_pan_and_leaves_the_ends_empty() -> None:
    clip = _panned(4, (48, 64), (3, -2))
    motion = estimate_motion(clip, max_flow=24.0)
    assert motion.shape == (1, 4, 4, 48, 64)
    inner = (..., slice(12, -12), slice(12, -12))
    forward, backward = motion[0, :3, 0:2][inner], motion[0, 1:, 2:4][inner]
    assert (forward[:, 0] - 3).abs().median() < 0.1 and (forward[:, 1] + 2).abs().median() < 0.1
    assert (backward[:, 0] + 3).abs().median() < 0.1 and (backward[:, 1] - 2).abs().median() < 0.1
    assert not motion[0, -1, 0:2].any() and not motion[0, 0, 2:4].any()  # no frame beyond the clip
    assert estimate_motion(clip, max_flow=1.0).abs().max() <= 1.0


@pytest.mark.parametrize("neighbourhood", [1, 3])
def test_a_pan_with_its_flow_looks_like_a_still_clip(neighbourhood: int) -> None:
    """A pan by whole pixels with its exact flow: the neighbours, warped, are the frame itself, so
    away from the borders each frame comes out as it would from a clip that does not move. Without
    the flow (attention comparing a pixel with the same pixel of the other frames) it does not."""
    model = _randomised(
        StrongSR(scale=2, dim=8, n_blocks=2, heads=2, window=1, neighbourhood=neighbourhood, max_flow=6)
    )
    step = (5, 3)
    clip = _panned(7, (64, 80), step)
    motion = torch.zeros(1, 7, 4, 64, 80)
    motion[:, :-1, 0], motion[:, :-1, 1] = step[0], step[1]
    motion[:, 1:, 2], motion[:, 1:, 3] = -step[0], -step[1]
    t = 3
    still = clip[:, t : t + 1].expand(-1, 7, -1, -1, -1)
    with torch.no_grad():
        aligned = model(clip, slice(t, t + 1), motion)[0, 0]
        unaligned = model(clip, slice(t, t + 1), torch.zeros_like(motion))[0, 0]
        expected = model(still, slice(t, t + 1), torch.zeros_like(motion))[0, 0]
    inner = (..., slice(48, -48), slice(48, -48))  # 2 x the reach of 2 blocks at 5 px plus the convs
    assert (aligned - expected)[inner].abs().max() < 1e-5
    assert (unaligned - expected)[inner].abs().max() > 1e-3  # the test has teeth


def test_kept_frames_equal_the_same_frames_of_a_full_pass() -> None:
    model = _randomised(StrongSR(scale=2, dim=16, n_blocks=3, heads=2, window=1))
    clip = torch.rand(2, 12, 3, 10, 14)
    with torch.no_grad():
        whole = model(clip)
        for keep in (slice(3, 9), slice(0, 2), slice(11, 12), slice(0, 12)):
            assert torch.allclose(model(clip, keep), whole[:, keep], atol=1e-5)
    with pytest.raises(ValueError, match="selects no frame"):
        model(clip, slice(5, 5))


@pytest.mark.parametrize(("patch", "neighbourhood"), [(1, 1), (2, 3)])
def test_pieces_with_radius_context_equal_whole_clip(patch: int, neighbourhood: int) -> None:
    model = _randomised(
        StrongSR(scale=2, dim=16, n_blocks=2, heads=2, window=2, patch=patch, neighbourhood=neighbourhood), seed=1
    )
    radius = model.temporal_radius
    assert radius == 4
    clip = _panned(20, (12, 16), (1, 0), seed=1)
    with torch.no_grad():
        whole = model(clip)
        assert (whole - bicubic_upscale(clip[0], 2).clamp(0, 1)).abs().max() > 1e-3  # the test has teeth

        def in_pieces(context: int) -> torch.Tensor:
            parts = []
            for start in range(0, 20, 7):
                stop = min(start + 7, 20)
                lo, hi = max(0, start - context), min(20, stop + context)
                parts.append(model(clip[:, lo:hi])[:, start - lo : stop - lo])
            return torch.cat(parts, dim=1)

        assert (in_pieces(radius) - whole).abs().max() < 1e-4
        # One frame less context changes the frames next to the cuts: R is tight, not generous.
        assert (in_pieces(radius - 1) - whole).abs().max() > 1e-4


def test_window_zero_upscales_each_frame_from_itself() -> None:
    """The ablation's setting: the same weights with window 0 have R = 0, and changing the other
    frames changes nothing."""
    model = _randomised(StrongSR(scale=2, dim=8, n_blocks=2, heads=2, window=1))
    model.window = 0
    assert model.temporal_radius == 0
    clip = torch.rand(1, 5, 3, 8, 10)
    other = clip.clone()
    other[:, [0, 1, 3, 4]] = torch.rand(1, 4, 3, 8, 10)
    with torch.no_grad():
        assert torch.equal(model(clip)[:, 2], model(other)[:, 2])


def test_single_frame_clip() -> None:
    model = _randomised(StrongSR(scale=2, dim=8, n_blocks=1, heads=1, window=1))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3, 5, 6)).shape == (1, 1, 3, 10, 12)


def test_rejects_wrong_layout_and_settings() -> None:
    model = StrongSR(scale=2, dim=8, n_blocks=1, heads=1, window=1)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        StrongSR(scale=2, dim=10, n_blocks=1, heads=3, window=1)
    with pytest.raises(ValueError, match="odd"):
        StrongSR(scale=2, dim=8, n_blocks=1, heads=2, window=1, neighbourhood=2)
