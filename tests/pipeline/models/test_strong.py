"""StrongSR: shapes, honest start, and the temporal receptive radius that seamless stitching relies on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.strong import StrongSR, TemporalAttention, bicubic_upscale


def _randomised(model: StrongSR, seed: int = 0) -> StrongSR:
    """Non-zero output branch, so the model's output depends on its features."""
    torch.manual_seed(seed)
    nn.init.normal_(model.recon.weight, std=0.05)
    nn.init.normal_(model.recon.bias, std=0.01)
    return model.eval()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("patch", [1, 2])
def test_output_shape_and_range(scale: int, patch: int) -> None:
    torch.manual_seed(0)
    model = _randomised(StrongSR(scale=scale, dim=8, n_blocks=1, heads=2, window=1, patch=patch))
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


@pytest.mark.parametrize(("frames", "window"), [(6, 1), (5, 2), (2, 3), (1, 1)])
def test_banded_attention_equals_masked_dense_attention(frames: int, window: int) -> None:
    torch.manual_seed(0)
    attn = TemporalAttention(dim=8, heads=2).eval()
    x = torch.randn(2 * frames, 3, 4, 8)  # two clips, (B*T, H, W, C)
    # Reference: plain T x T attention per spatial location, frames further than `window` masked out.
    tok = x.view(2, frames, 12, 8).transpose(1, 2).reshape(24, frames, 8)
    q, k, v = attn.qkv(tok).view(24, frames, 3, 2, 4).permute(2, 0, 3, 1, 4)
    idx = torch.arange(frames)
    band = (idx[:, None] - idx[None, :]).abs() <= window
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=band).transpose(1, 2).reshape(24, frames, 8)
    expected = attn.proj(dense).view(2, 12, frames, 8).transpose(1, 2).reshape(2 * frames, 3, 4, 8)
    with torch.no_grad():
        assert torch.allclose(attn(x, frames, window), expected, atol=1e-5)


def test_kept_frames_equal_the_same_frames_of_a_full_pass() -> None:
    model = _randomised(StrongSR(scale=2, dim=16, n_blocks=3, heads=2, window=1))
    clip = torch.rand(2, 12, 3, 10, 14)
    with torch.no_grad():
        whole = model(clip)
        for keep in (slice(3, 9), slice(0, 2), slice(11, 12), slice(0, 12)):
            assert torch.allclose(model(clip, keep), whole[:, keep], atol=1e-6)
    with pytest.raises(ValueError, match="selects no frame"):
        model(clip, slice(5, 5))


@pytest.mark.parametrize("patch", [1, 2])
def test_pieces_with_radius_context_equal_whole_clip(patch: int) -> None:
    torch.manual_seed(1)
    model = _randomised(StrongSR(scale=2, dim=16, n_blocks=2, heads=2, window=2, patch=patch), seed=1)
    radius = model.temporal_radius
    assert radius == 4
    clip = torch.rand(1, 20, 3, 12, 16)
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


def test_single_frame_clip() -> None:
    model = _randomised(StrongSR(scale=2, dim=8, n_blocks=1, heads=1, window=1))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3, 5, 6)).shape == (1, 1, 3, 10, 12)


def test_rejects_wrong_layout() -> None:
    model = StrongSR(scale=2, dim=8, n_blocks=1, heads=1, window=1)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        StrongSR(scale=2, dim=10, n_blocks=1, heads=3, window=1)
