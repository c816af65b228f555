"""Dense optical flow in pure torch, for the flow-warping error `ewarp` (pipeline/quality/metrics.py).

Estimator: coarse-to-fine Lucas–Kanade with iterative warping, on BT.601 luma (Bouguet's
pyramidal scheme, applied at every pixel). The luma is blurred (sigma `PRESMOOTH_SIGMA`) and
halved into a pyramid down to about `MIN_LEVEL_SIZE` pixels. At each level, from the
coarsest, the flow of the level above is upsampled (and its vectors scaled), then refined
`ITERATIONS` times: warp the source by the current flow (bilinear) and solve at every pixel the
2x2 Lucas–Kanade system over a Gaussian window (sigma `WINDOW_SIGMA` pixels at that level):

    [Sxx + a  Sxy    ] [du]     [Sxt]
    [Sxy      Syy + a] [dv] = - [Syt],     Sxt = window-weighted sum of Ix * It, etc.

with Ix, Iy the central-difference gradients of the mean of target and warped source,
It = warped source - target, and `a` (`TIKHONOV`) a small damping term: where the window has
no texture the update is ~0, so flat areas keep the motion found at coarser levels.

Accuracy (tests/pipeline/test_flow.py): on smooth synthetic texture, sub-pixel translations
and small affine motions come out with a median endpoint error of about 0.04 px (unbiased on
average; the rest is the bilinear warp's interpolation error, which the per-pixel solve
partly fits). Time: ~0.1 s per flow on one CPU thread at 640x360.

Convention: `estimate_flow(target, source)` returns F (N, 2, H, W), in pixels (x, y), with
source(p + F(p)) ≈ target(p); `warp(source, F)` then aligns the source to the target.
Frames are (N, 3, H, W) floats in [0, 1] on any device; everything is batched over N.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_LEVEL_SIZE = 8  # the coarsest level's shorter side is at least this (pixels)
MAX_LEVELS = 6  # motions of a few pixels at the coarsest level: up to ~2**6 px at full size
ITERATIONS = 2  # warp-and-solve rounds per level
WINDOW_SIGMA = 3.0  # Lucas–Kanade window (Gaussian), pixels at each level: ~15 px wide
PRESMOOTH_SIGMA = 1.0  # blur before differentiating: less noise, less aliasing
TIKHONOV = 1e-5  # `a` above, in (intensity / pixel)^2, against the squared gradients (~1e-3 on texture)
_LUMA = (0.299, 0.587, 0.114)  # BT.601, as SSIM in metrics.py


def luma(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) BT.601 luma."""
    weights = torch.tensor(_LUMA, device=frames.device, dtype=frames.dtype).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel of (N, C, H, W), borders replicated."""
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    g = torch.exp(-(taps**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    rows, columns = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), rows, groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), columns, groups=c)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of (N, 1, H, W) along x and y (one-sided at the borders)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return gx, gy


def _positions(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y (N, H, W) of p + flow(p), in pixels."""
    h, w = flow.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    return xs + flow[:, 0], ys + flow[:, 1]


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image(p + flow(p)): (N, C, H, W) sampled bilinearly at the flowed positions (as Lai et
    al.'s warping layer; PyTorch's bicubic, a = -0.75, biases sub-pixel flow); outside the
    frame, the nearest edge pixel."""
    h, w = image.shape[-2:]
    x, y = _positions(flow.to(image.dtype))
    # align_corners=True: -1 and 1 are the centres of the edge pixels.
    grid = torch.stack((x * (2 / max(w - 1, 1)) - 1, y * (2 / max(h - 1, 1)) - 1), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """Finest first; each level half the size of the one before (antialiased)."""
    levels = [x]
    while len(levels) < MAX_LEVELS and min(levels[-1].shape[-2:]) // 2 >= MIN_LEVEL_SIZE:
        levels.append(F.interpolate(levels[-1], scale_factor=0.5, mode="bilinear", antialias=True))
    return levels


def _refine(target: torch.Tensor, source: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """One Lucas–Kanade update of `flow` at one level (luma, presmoothed)."""
    warped = warp(source, flow)
    gx, gy = _gradients((target + warped) / 2)
    gt = warped - target
    sums = _gaussian_blur(torch.cat((gx * gx, gx * gy, gy * gy, gx * gt, gy * gt), dim=1), WINDOW_SIGMA)
    sxx, sxy, syy, sxt, syt = sums.split(1, dim=1)
    sxx, syy = sxx + TIKHONOV, syy + TIKHONOV
    det = sxx * syy - sxy * sxy  # >= TIKHONOV**2 > 0: the matrix is positive definite
    du = (sxy * syt - syy * sxt) / det
    dv = (sxy * sxt - sxx * syt) / det
    return flow + torch.cat((du, dv), dim=1)


def estimate_flow(target: torch.Tensor, source: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """Flow F (N, 2, H, W) in pixels with source(p + F(p)) ≈ target(p); frames (N, 3, H, W) in [0, 1]."""
    if target.shape != source.shape or target.dim() != 4 or target.shape[1] != 3:
        raise ValueError(f"expected two (N, 3, H, W) batches of the same shape, got {target.shape} and {source.shape}")
    work = torch.float64 if target.dtype == torch.float64 else torch.float32
    targets = _pyramid(_gaussian_blur(luma(target.to(work)), PRESMOOTH_SIGMA))
    sources = _pyramid(_gaussian_blur(luma(source.to(work)), PRESMOOTH_SIGMA))
    n = target.shape[0]
    flow = torch.zeros(n, 2, *targets[-1].shape[-2:], device=target.device, dtype=work)
    for level_target, level_source in zip(reversed(targets), reversed(sources)):
        h, w = level_target.shape[-2:]
        if flow.shape[-2:] != (h, w):
            # Upsampled to the finer grid: vectors scale with the size ratio (2, or near it on odd sizes).
            ratio = torch.tensor((w / flow.shape[-1], h / flow.shape[-2]), device=flow.device, dtype=work)
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False) * ratio.view(1, 2, 1, 1)
        for _ in range(iterations):
            flow = _refine(level_target, level_source, flow)
    return flow


def occlusion_mask(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Non-occlusion mask (N, 1, H, W), bool, of the frame `forward` starts from.

    `forward` maps that frame to the other one, `backward` the other one back. A pixel counts
    when its forward vector lands inside the frame and the backward flow at the landing point
    brings it back (Ruder et al. 2016, as Lai et al. 2018 use it):
    |F_f + F_b(p + F_f)|^2 < 0.01 (|F_f|^2 + |F_b(p + F_f)|^2) + 0.5.
    """
    h, w = forward.shape[-2:]
    back = warp(backward, forward)
    mismatch = (forward + back).square().sum(1, keepdim=True)
    consistent = mismatch < 0.01 * (forward.square().sum(1, keepdim=True) + back.square().sum(1, keepdim=True)) + 0.5
    # Pixels that leave the frame have no counterpart (a border uncovered by the motion).
    x, y = _positions(forward)
    inside = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).unsqueeze(1)
    return consistent & inside
