"""StrongSR: the multi-frame model (global structure and motion coherence), LR -> HR base.

Per-frame spatial convolutions interleaved with temporal self-attention over frames at each
spatial location, restricted to a band of `window` frames each side. Output frame t therefore
depends only on input frames t-R..t+R with R = n_blocks * window (`temporal_radius`): frames
beyond the clip are absent from attention, never padded or replicated, so a clip processed in
pieces with at least R context frames gives the same core frames as the whole clip.

Layout, for speed on CPU and GPU alike: features stay (N, C, H, W) in channels-last memory, so
the per-frame convolutions get the layout oneDNN and cuDNN prefer, and the per-token layers
(LayerNorm, the attention's projections, the MLP) read the same memory as a (N, H, W, C) view
without a copy. The banded attention scores only the 2·window+1 frames each query may see,
instead of a masked T x T attention.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


def bicubic_upscale(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, h*scale, w*scale), bicubic, unclamped (linear in its input).

    Exactly F.interpolate(mode="bicubic", align_corners=False), computed as one convolution into
    the scale x scale output phases and a pixel shuffle: every output pixel reads the 5 x 5 input
    pixels around its source (edges repeated, as interpolate clamps its taps), and a convolution
    runs 2-4x faster than interpolate's bicubic on CPU. Always in float32 or wider, even
    under autocast: this base carries the whole image, the models only a residual over it.
    """
    c, h, w = frames.shape[-3:]
    dtype = frames.dtype if frames.dtype == torch.float64 else torch.float32
    kernel = _bicubic_kernel(scale).to(frames.device, dtype).repeat(c, 1, 1, 1)
    device = frames.device.type
    with torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else nullcontext():
        # Channels-last: oneDNN's grouped convolution is several times faster in that layout.
        padded = F.pad(frames.to(dtype), (2, 2, 2, 2), mode="replicate").contiguous(memory_format=torch.channels_last)
        phases = F.conv2d(padded, kernel, groups=c).unflatten(1, (c, scale, scale))  # (N, c, ry, rx, h, w)
        # The pixel shuffle, written as one copy into a contiguous result.
        return phases.permute(0, 1, 4, 2, 5, 3).reshape(-1, c, h * scale, w * scale)


@lru_cache
def _bicubic_kernel(scale: int) -> torch.Tensor:
    """(scale², 1, 5, 5): output phase (ry, rx) at channel ry*scale + rx, the weights of the input
    pixels at offsets -2..2 around it, read off interpolate's own output for unit impulses."""
    kernel = torch.zeros(scale * scale, 1, 5, 5, dtype=torch.float64)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            impulse = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
            impulse[0, 0, 2, 2] = 1.0
            up = F.interpolate(impulse, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
            # Output pixel (m, r) reads input m + d; the impulse at 2 is that input for m = 2 - d.
            block = up[(2 - dy) * scale : (3 - dy) * scale, (2 - dx) * scale : (3 - dx) * scale]
            kernel[:, 0, dy + 2, dx + 2] = block.reshape(-1)
    return kernel


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear; on CPU a matmul then an in-place bias, which at these widths takes about two
    thirds of the time addmm does (it first copies the broadcast bias into its output)."""
    if x.device.type != "cpu":
        return F.linear(x, weight, bias)
    out = x.matmul(weight.t())
    return out if bias is None else out.add_(bias)


def _frame_span(frames: int, offset: int) -> tuple[int, int]:
    """Frames t of a clip for which t + offset is also in the clip: [lo, hi)."""
    return max(0, -offset), min(frames, frames - offset)


class TemporalAttention(nn.Module):
    """Multi-head self-attention whose tokens are the frames at one spatial location; each frame
    attends to the frames at most `window` away (the band), those outside the clip are absent."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, window: int) -> torch.Tensor:
        """x: (B*T, H, W, C) tokens of `frames` consecutive frames per clip -> same shape."""
        bt, h, w, c = x.shape
        head_dim = c // self.heads
        # q, k and v from slices of the one qkv layer (the stored weights), each contiguous, the
        # 1/sqrt(head_dim) folded into q's weights. k's bias adds the same q·b_k to every score of
        # a query, which the softmax cancels; v's bias passes through the attention unchanged (the
        # weights sum to 1), so it folds into proj's bias: the same result, two bias passes fewer.
        wq, wk, wv = self.qkv.weight.split(c)
        bq, _, bv = self.qkv.bias.split(c)
        scale = 1.0 / math.sqrt(head_dim)
        shape = (bt // frames, frames, h, w, self.heads, head_dim)
        q = _linear(x, wq * scale, bq * scale).view(shape)
        k, v = _linear(x, wk, None).view(shape), _linear(x, wv, None).view(shape)
        offsets = [d for d in range(-window, window + 1) if _frame_span(frames, d)[0] < _frame_span(frames, d)[1]]
        # Scores (offset, B, T, H, W, heads), offset first: the softmax then runs across whole
        # tensors instead of along a tiny last dimension.
        scores = q.new_full((len(offsets), *shape[:-1]), -math.inf)
        for i, d in enumerate(offsets):
            lo, hi = _frame_span(frames, d)
            scores[i, :, lo:hi] = (q[:, lo:hi] * k[:, lo + d : hi + d]).sum(-1)
        weights = scores.softmax(0).unsqueeze(-1)  # 0 for the absent frames (-inf); every frame sees itself
        out = torch.zeros_like(q)
        for i, d in enumerate(offsets):
            lo, hi = _frame_span(frames, d)
            out[:, lo:hi].addcmul_(weights[i, :, lo:hi], v[:, lo + d : hi + d])
        return _linear(out.view(bt, h, w, c), self.proj.weight, self.proj.bias + self.proj.weight @ bv)


class StrongBlock(nn.Module):
    """Spatial residual conv per frame, then a pre-norm temporal transformer layer."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TemporalAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, f: torch.Tensor, frames: int, window: int) -> torch.Tensor:
        """f: (B*T, C, H, W) features, channels-last, of `frames` consecutive frames per clip."""
        f = f + self.conv2(F.gelu(self.conv1(f)))
        tok = f.permute(0, 2, 3, 1)  # (B*T, H, W, C): a view of channels-last memory, no copy
        tok = tok + self.attn(self.norm1(tok), frames, window)
        fc1, _, fc2 = self.mlp  # the Sequential keeps the weight files' key names (mlp.0, mlp.2)
        tok = tok + _linear(F.gelu(_linear(self.norm2(tok), fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
        return tok.permute(0, 3, 1, 2)


def _frames(f: torch.Tensor, clips: int, keep: slice) -> torch.Tensor:
    """Frames `keep` of each clip of (B*T, C, H, W) features, the layout kept."""
    t = f.shape[0] // clips
    if keep.start == 0 and keep.stop == t:
        return f
    kept = f.unflatten(0, (clips, t))[:, keep]
    return kept.flatten(0, 1).contiguous(memory_format=torch.channels_last)


class StrongSR(nn.Module):
    """(B, T, 3, H, W) in [0, 1] -> (B, T, 3, H*scale, W*scale) in [0, 1]."""

    def __init__(
        self,
        scale: int,
        dim: int,
        n_blocks: int,
        heads: int,
        window: int,
        patch: int = 1,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if scale < 1 or patch < 1 or window < 0 or n_blocks < 1:
            raise ValueError(f"bad StrongSR settings: scale={scale} patch={patch} window={window} n_blocks={n_blocks}")
        self.scale, self.patch, self.window, self.n_blocks = scale, patch, window, n_blocks
        # patch 1: a 3x3 conv; patch p > 1: a linear p x p patch embedding (big sizes, fewer tokens).
        self.embed = nn.Conv2d(3, dim, 3, padding=1) if patch == 1 else nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.ModuleList(StrongBlock(dim, heads, mlp_ratio) for _ in range(n_blocks))
        up = patch * scale
        self.recon = nn.Conv2d(dim, 3 * up * up, 3, padding=1)
        self.shuffle = nn.PixelShuffle(up)
        # Honest start: a fresh model outputs exactly (clamped) bicubic, not noise.
        nn.init.zeros_(self.recon.weight)
        nn.init.zeros_(self.recon.bias)

    @property
    def temporal_radius(self) -> int:
        """R: output frame t depends only on input frames t-R..t+R."""
        return self.n_blocks * self.window

    @property
    def spatial_radius(self) -> int:
        """LR pixels an output pixel sees on each side (tiling's margin, pipeline/tiling.py).

        Only the convolutions reach sideways (attention, norms and MLP are per location): two 3x3
        per block and the 3x3 recon at patch resolution, plus the 3x3 embed when patch is 1. At
        patch p, L such convs reach L patches, and a pixel sees its whole patch: (L + 1) p - 1.
        The bicubic base needs 2 px."""
        convs = 2 * self.n_blocks + 1 + (self.patch == 1)
        return max((convs + 1) * self.patch - 1, 2)

    @property
    def spatial_align(self) -> int:
        """Tiles start on multiples of the patch, so they cut the frame into the same patches."""
        return self.patch

    def forward(self, x: torch.Tensor, keep: slice | None = None) -> torch.Tensor:
        """Upscale frames `keep` (default: all) of each clip; the others are context only.

        Each block is computed only on the frames the blocks after it still need (`window` fewer
        on each side per block), so context frames cost less than output frames; the kept frames
        come out exactly as in a full forward pass.
        """
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"StrongSR expects (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        start, stop, _ = (keep or slice(0, t)).indices(t)
        if start >= stop:
            raise ValueError(f"keep {keep} selects no frame of a {t}-frame clip")

        def needed(blocks_after: int) -> slice:
            reach = blocks_after * self.window
            return slice(max(0, start - reach), min(t, stop + reach))

        first = needed(self.n_blocks)
        frames = x[:, first].reshape(-1, 3, h, w)
        ph, pw = -h % self.patch, -w % self.patch
        if ph or pw:  # spatial (never temporal) padding to whole patches; cropped off below
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        f = self.embed(frames).contiguous(memory_format=torch.channels_last)
        span = first
        for i, block in enumerate(self.blocks):
            f = block(f, span.stop - span.start, self.window)
            nxt = needed(self.n_blocks - 1 - i)
            f = _frames(f, b, slice(nxt.start - span.start, nxt.stop - span.start))
            span = nxt
        res = self.shuffle(self.recon(f))[..., : h * self.scale, : w * self.scale]
        base = bicubic_upscale(x[:, start:stop].reshape(-1, 3, h, w), self.scale)
        return (base + res).clamp_(0.0, 1.0).view(b, stop - start, 3, h * self.scale, w * self.scale)
