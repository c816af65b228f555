"""StrongSR: the multi-frame model (global structure and motion coherence), LR -> HR base.

Per-frame spatial convolutions interleaved with temporal self-attention over frames at each
spatial location, restricted to a band of `window` frames each side. Output frame t therefore
depends only on input frames t-R..t+R with R = n_blocks * window (`temporal_radius`): frames
beyond the clip are absent from attention, never padded or replicated, so a clip processed in
pieces with at least R context frames gives the same core frames as the whole clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bicubic_upscale(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, h*scale, w*scale), bicubic, unclamped (linear in its input)."""
    h, w = frames.shape[-2:]
    return F.interpolate(frames, size=(h * scale, w * scale), mode="bicubic", align_corners=False)


def band_mask(frames: int, window: int, device: torch.device) -> torch.Tensor:
    """Boolean (T, T) mask, True where |i - j| <= window (True = may attend)."""
    idx = torch.arange(frames, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= window


class TemporalAttention(nn.Module):
    """Multi-head self-attention whose tokens are the frames at one spatial location."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(n, t, c))


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

    def forward(self, f: torch.Tensor, frames: int, mask: torch.Tensor) -> torch.Tensor:
        """f: (B*T, C, H, W) features of `frames` consecutive frames per clip."""
        f = f + self.conv2(F.gelu(self.conv1(f)))
        bt, c, h, w = f.shape
        # Tokens: (B*H*W, T, C), one temporal sequence per spatial location.
        tok = f.permute(0, 2, 3, 1).reshape(bt // frames, frames, h * w, c).transpose(1, 2).reshape(-1, frames, c)
        tok = tok + self.attn(self.norm1(tok), mask)
        tok = tok + self.mlp(self.norm2(tok))
        # Back to per-frame maps, laid out channels-last (what the next conv prefers on CPU and GPU).
        tok = tok.view(bt // frames, h * w, frames, c).transpose(1, 2).reshape(bt, h, w, c)
        return tok.permute(0, 3, 1, 2)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"StrongSR expects (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        frames = x.reshape(b * t, 3, h, w)
        base = bicubic_upscale(frames, self.scale)
        # Spatial (never temporal) padding to a whole number of patches; cropped off below.
        ph, pw = -h % self.patch, -w % self.patch
        if ph or pw:
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        f = self.embed(frames)
        mask = band_mask(t, self.window, x.device)
        for block in self.blocks:
            f = block(f, t, mask)
        res = self.shuffle(self.recon(f))
        res = res[..., : h * self.scale, : w * self.scale]
        return (base + res).clamp_(0.0, 1.0).view(b, t, 3, h * self.scale, w * self.scale)
