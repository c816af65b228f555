"""Classical upscalers with the interfaces of the two models, for benchmarks in the real pipeline.

`BicubicSR` and `LanczosSR` stand in for the strong model ((B, T, 3, h, w) -> (B, T, 3, h*s, w*s),
per frame, `temporal_radius` 0); `IdentitySR` stands in for the light model ((N, 3, H, W) ->
the same frames). They have no weights: the registry lists them as `bicubic`, `lanczos` and
`none`, so "light model alone" is `strong=bicubic, light=tiny` and "strong alone" is
`strong=tiny, light=none`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.strong import bicubic_upscale

LANCZOS_A = 3  # lobes: Lanczos-3


def lanczos_kernel(x: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """L(x) = sinc(x) sinc(x / a) for |x| < a, else 0 (torch.sinc is the normalised sin(pi x) / (pi x))."""
    return torch.where(x.abs() < a, torch.sinc(x) * torch.sinc(x / a), torch.zeros_like(x))


def lanczos_weights(scale: int, a: int = LANCZOS_A) -> torch.Tensor:
    """(scale, 2a + 1) float64 taps: row r gives output pixel s*k + r from input pixels k-a..k+a.

    Pixel centres as in `bicubic_upscale` (align_corners=False): output pixel i samples the
    input at x = (i + 0.5) / s - 0.5, so the phase of s*k + r is d_r = (r + 0.5) / s - 0.5
    and tap j (input pixel k + j) weighs L(d_r - j). Each row is normalised to sum 1, so a
    constant image stays constant. Upscaling only: the kernel is not widened (no antialiasing).
    """
    phase = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5
    taps = torch.arange(-a, a + 1, dtype=torch.float64)
    w = lanczos_kernel(phase[:, None] - taps[None, :], a)
    return w / w.sum(dim=1, keepdim=True)


def lanczos_upscale(frames: torch.Tensor, scale: int, a: int = LANCZOS_A) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, h*scale, w*scale), separable Lanczos resampling, unclamped.

    Borders repeat the edge pixel (as `bicubic_upscale` clamps its indices). Each pass is one
    convolution whose `scale` output channels are the output phases, interleaved afterwards.
    """
    n, c, h, w = frames.shape
    taps = lanczos_weights(scale, a).to(device=frames.device, dtype=frames.dtype)
    x = frames.reshape(n * c, 1, h, w)
    # Rows: pad the width, one channel per phase, then interleave the phases along the width.
    x = F.conv2d(F.pad(x, (a, a, 0, 0), mode="replicate"), taps.view(scale, 1, 1, -1))
    x = x.permute(0, 2, 3, 1).reshape(n * c, 1, h, w * scale)
    # Columns: the same along the height.
    x = F.conv2d(F.pad(x, (0, 0, a, a), mode="replicate"), taps.view(scale, 1, -1, 1))
    x = x.permute(0, 2, 1, 3).reshape(n, c, h * scale, w * scale)
    return x


class _PerFrameUpscaler(nn.Module):
    """(B, T, 3, h, w) in [0, 1] -> (B, T, 3, h*scale, w*scale) in [0, 1], frame by frame."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"bad scale {scale}")
        self.scale = scale

    # LR pixels an output pixel sees on each side (tiling's margin, pipeline/models/tiling.py).
    spatial_radius: int
    spatial_align = 1

    @property
    def temporal_radius(self) -> int:
        return 0  # no temporal context: no context frames needed

    def upscale(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, keep: slice | None = None) -> torch.Tensor:
        """Frames `keep` (default: all) of each clip, as StrongSR.forward."""
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"{type(self).__name__} expects (B, T, 3, H, W), got {tuple(x.shape)}")
        x = x[:, keep] if keep is not None else x
        b, t, _, h, w = x.shape
        # A frame at a time into the result: the upscaling's intermediates (its phases, then their
        # interleaving, each as big as the output) stay one frame's size (the classical stage's
        # memory at SD: docs/benchmarks.md#memory); the same values as a batched call.
        out: torch.Tensor | None = None
        for i, frame in enumerate(x.reshape(b * t, 3, h, w).split(1)):
            up = self.upscale(frame).clamp_(0.0, 1.0)
            if out is None:
                out = up.new_empty(b * t, *up.shape[1:])  # the upscaler's dtype (float64 stays float64)
            out[i : i + 1] = up
        return out.view(b, t, 3, h * self.scale, w * self.scale)


class BicubicSR(_PerFrameUpscaler):
    """Bicubic upscaling (`bicubic_upscale`, clamped): the baseline every metric refers to."""

    spatial_radius = 2  # 4 taps, at most 2 px from the output pixel's own input pixel

    def upscale(self, frames: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(frames, self.scale)


class LanczosSR(_PerFrameUpscaler):
    """Lanczos-3 upscaling (`lanczos_upscale`, clamped)."""

    spatial_radius = LANCZOS_A  # taps k-a..k+a

    def upscale(self, frames: torch.Tensor) -> torch.Tensor:
        return lanczos_upscale(frames, self.scale)


class IdentitySR(nn.Module):
    """(N, 3, H, W) -> the same frames: "no light model"."""

    spatial_radius, spatial_align = 0, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"IdentitySR expects (N, 3, H, W), got {tuple(x.shape)}")
        return x
