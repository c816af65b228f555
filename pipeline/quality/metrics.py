"""Segment quality metrics; the definitions are part of the contract (docs/manifest.md, "Metric definitions").

Frames are float tensors in [0, 1], or pixels (uint8, uint16) standing for their value over the
peak, shaped (T, 3, H, W), on any device: LR input I (T, 3, h, w),
output O (T, 3, h*s, w*s). B is bicubic upscaling by s (unclamped, hence linear:
B(ΔI) = ΔB(I)); D is antialiased bicubic downscaling to the exact LR size. Segments never
straddle a scene cut, so every consecutive pair counts. Means are over all frames and pixels
(channels included); the work runs a few frames at a time so memory stays O(frame), not
O(segment). Every function returns a plain float.

Without a reference, the light stage's flicker measure: the frame-to-frame change of the detail
the output adds to bicubic, R_t = O_t - B(I_t), after motion compensation, in ewarp's form:

    flicker = 1/(T-1) * sum_{t=2..T} [ sum_p M_t(p) ||R_t(p) - W_t(R_{t-1})(p)||^2 / sum_p M_t(p) ]

where W_t warps to frame t (bilinear) by the flow F_t estimated on the LR input
(I_t -> I_{t-1}, pipeline/quality/flow.py: I_{t-1}(p + F_t(p)) ≈ I_t(p)), upsampled to HR (bilinear,
vectors times s), and M_t is that flow's non-occlusion mask at LR (as ewarp's), upsampled
nearest. W is linear, so R_t - W_t(R_{t-1}) = [O_t - W_t(O_{t-1})] - [B(I_t) - W_t(B(I_{t-1}))]:
the output's motion-compensated change minus bicubic's. Bicubic itself scores exactly 0; added
detail that moves with the picture scores low (what remains: the flow's and the warp's errors on
HR detail, and bicubic's own shimmer on aliased input, which the output need not share), detail
that changes from frame to frame (flicker, boiling or popping texture) raises it. Lower is
better; pairs with an empty mask are left out, and fewer than two frames give NaN. The flows are
the metric's whole cost (two per pair, against a few passes over memory for the rest), so flicker
is taken on at most `FLICKER_PAIRS` pairs of a segment, spread evenly over it (every pair of a
segment of up to `FLICKER_PAIRS` + 1 frames); the sum runs over those pairs.

Against an HR reference R (T, 3, H, W) (benchmark mode): `psnr`, `ssim`, and the flow-warping
error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency"):

    ewarp = 1/(T-1) * sum_{t=2..T} [ sum_p M_t(p) ||O_t(p) - Ô_{t-1}(p)||^2 / sum_p M_t(p) ]

where Ô_{t-1} = O_{t-1} warped to frame t (bilinear) by the flow F_t estimated on the
reference (R_t -> R_{t-1}, pipeline/quality/flow.py: R_{t-1}(p + F_t(p)) ≈ R_t(p)), ||.||^2 sums the
squared RGB differences of a pixel, and M_t is the non-occlusion mask of the reference flow:
a forward-backward consistency check (Ruder et al. 2016, as Lai et al. use it), and F_t(p)
landing inside the frame. A pair whose mask is empty (nothing in common) is left out of the
mean. Lower is better; for the reference itself only the flow's and the warp's own errors remain
(~1e-5 on smooth motion).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F

from pipeline.models.strong import bicubic_upscale
from pipeline.quality import flow

MIN_MOTION = 1.0 / 255.0  # tfs denominator floor: static shots must not divide by ~0
PSNR_CAP_DB = 100.0  # PSNR of identical frames (finite, so manifests aggregate cleanly)
CHUNK_FRAMES = 8
CHUNK_BYTES = 16 * 2**20  # float32 bytes of one array a chunk holds at most (docs/benchmarks.md#memory)
FLICKER_PAIRS = 8  # the pairs flicker is taken on, at most (module docstring)
FLOW_CHUNK_PAIRS = 2  # flow estimation holds many full-size maps per pair: fewer pairs at a time
_PEAK = {torch.uint8: 255.0, torch.uint16: 65535.0}


def _chunk_frames(frames: torch.Tensor) -> int:
    """Frames a chunk of these holds: `CHUNK_FRAMES`, fewer for large frames (an SD x2 frame is 18 MB as
    float, and a chunk of the output stands beside its bicubic, residual and differences)."""
    return max(1, min(CHUNK_FRAMES, CHUNK_BYTES // (frames[0].numel() * 4)))


def _chunks(start: int, stop: int, size: int = CHUNK_FRAMES) -> Iterator[slice]:
    for lo in range(start, stop, size):
        yield slice(lo, min(lo + size, stop))


def _unit(frames: torch.Tensor) -> torch.Tensor:
    """Float frames in [0, 1]: float frames as they are (as float32), pixels scaled by their peak."""
    return frames.float() if frames.is_floating_point() else frames.float().div_(_PEAK[frames.dtype])


def _check_frames(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or not (x.is_floating_point() or x.dtype in _PEAK):
        raise ValueError(f"{what}: expected float or pixel frames (T, 3, H, W), got {x.dtype} {tuple(x.shape)}")


def _check_pair(out: torch.Tensor, lr: torch.Tensor, scale: int) -> None:
    _check_frames(out, "output")
    _check_frames(lr, "input")
    t, _, h, w = lr.shape
    if out.shape != (t, 3, h * scale, w * scale):
        raise ValueError(f"output {tuple(out.shape)} is not input {tuple(lr.shape)} upscaled x{scale}")


def _check_same(a: torch.Tensor, b: torch.Tensor) -> None:
    _check_frames(a, "first")
    _check_frames(b, "second")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")


def bicubic_downscale(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """D: antialiased bicubic downscaling of (N, C, H, W) to `size` (h, w)."""
    return F.interpolate(frames, size=size, mode="bicubic", antialias=True, align_corners=False)


def _psnr_from_mse(mse: float) -> float:
    return PSNR_CAP_DB if mse <= 0.0 else min(PSNR_CAP_DB, -10.0 * math.log10(mse))


def tfs(out: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """Temporal Fidelity Score (lower is better): output change the input does not explain,
    mean|ΔO - B(ΔI)| / max(mean|B(ΔI)|, 1/255). NaN for fewer than two frames."""
    return tfs_and_worst(out, lr, scale)[0]


def tfs_and_worst(out: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[float, int | None]:
    """`tfs`, and the frame t whose change from t-1 the input explains least (largest
    mean|ΔO_t - B(ΔI_t)|): where to look for flicker. None for fewer than two frames."""
    found = bicubic_metrics(out, lr, scale)
    return found.tfs, found.tfs_worst


def flicker(out: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """Motion-compensated flicker of the detail added to bicubic (formula in the module
    docstring); lower is better, 0 for bicubic. NaN for fewer than two frames, or when every
    pair's mask is empty."""
    return flicker_and_worst(out, lr, scale)[0]


def flicker_and_worst(out: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[float, int | None]:
    """`flicker`, and the frame t whose added detail departs most from frame t-1's moved along
    (largest masked mean ||R_t - W_t(R_{t-1})||^2). None where `flicker` is NaN."""
    found = bicubic_metrics(out, lr, scale)
    return found.flicker, found.flicker_worst


class BicubicMetrics(NamedTuple):
    tfs: float
    tfs_worst: int | None  # frame index in the segment; None for fewer than two frames
    detail_gain: float
    flicker: float
    flicker_worst: int | None  # None also when every pair's mask is empty


def bicubic_metrics(out: torch.Tensor, lr: torch.Tensor, scale: int) -> BicubicMetrics:
    """`tfs`, `detail_gain` and `flicker` with their worst frames, from one bicubic upscaling of
    the input. B is linear, so ΔO_t - B(ΔI_t) = R_t - R_{t-1} with R = O - B(I), the residual
    detail_gain averages and flicker compares along the motion: one residual serves all three,
    in half the passes over HR-sized memory of differencing O and B(I) apart. Those passes, the
    upscaling and flicker's LR flows and HR warps are the cost, and the light stage pays it on
    every segment."""
    _check_pair(out, lr, scale)
    frames = out.shape[0]
    sampled = flicker_pairs(frames)
    detail, unexplained, motion = [], [], []  # per chunk; per pair (t-1, t), summed over pixels
    moved = []  # flicker's (masked error, mask size) of each sampled pair, (2, pairs), in the order of `sampled`
    last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # the previous chunk's last I, B(I), R
    for chunk in _chunks(0, frames, _chunk_frames(out)):
        small = _unit(lr[chunk])
        b = bicubic_upscale(small, scale)
        residual = _unit(out[chunk]) - b
        detail.append(residual.abs().sum())
        if last is not None:  # the pair straddling two chunks
            unexplained.append((residual[:1] - last[2]).abs_().sum((1, 2, 3)))
            motion.append((b[:1] - last[1]).abs_().sum((1, 2, 3)))
            if chunk.start in sampled:
                moved.append(_flicker_sums(residual[:1], last[2], small[:1], last[0], scale))
        unexplained.append(residual.diff(dim=0).abs_().sum((1, 2, 3)))
        motion.append(b.diff(dim=0).abs_().sum((1, 2, 3)))
        inside = [t - chunk.start for t in sampled if chunk.start < t < chunk.stop]  # pairs within the chunk
        if inside:
            cur, prev = inside, [i - 1 for i in inside]
            moved.append(_flicker_sums(residual[cur], residual[prev], small[cur], small[prev], scale))
        last = small[-1:], b[-1:], residual[-1:]
    gain = torch.stack(detail).double().sum().item() / out.numel()
    if frames < 2:
        return BicubicMetrics(math.nan, None, gain, math.nan, None)
    per_pair = torch.cat(unexplained).double()
    count = (frames - 1) * out[0].numel()
    score = (per_pair.sum().item() / count) / max(torch.cat(motion).double().sum().item() / count, MIN_MOTION)
    error, size = torch.cat(moved, dim=1).double()
    kept = size > 0
    if not kept.any():
        return BicubicMetrics(score, 1 + int(per_pair.argmax().item()), gain, math.nan, None)
    per_pair_flicker = torch.where(kept, error / size, -1.0)  # -1: an empty mask, left out
    return BicubicMetrics(
        score,
        1 + int(per_pair.argmax().item()),
        gain,
        per_pair_flicker[kept].mean().item(),
        sampled[int(per_pair_flicker.argmax().item())],
    )


def flicker_pairs(frames: int) -> list[int]:
    """The frames t whose pair (t-1, t) flicker is taken on: every pair, or `FLICKER_PAIRS` of them
    spread evenly from the first to the last."""
    pairs = frames - 1
    if pairs <= FLICKER_PAIRS:
        return list(range(1, frames))
    return sorted({1 + round(i * (pairs - 1) / max(FLICKER_PAIRS - 1, 1)) for i in range(FLICKER_PAIRS)})


def _flicker_sums(
    residual: torch.Tensor, residual_prev: torch.Tensor, lr: torch.Tensor, lr_prev: torch.Tensor, scale: int
) -> torch.Tensor:
    """(2, pairs), a column per pair (t-1, t): flicker's sum_p M_t(p) ||R_t(p) - W_t(R_{t-1})(p)||^2
    and sum_p M_t(p), over HR pixels. The flow runs at LR, on s^2 times fewer pixels than the residual."""
    to_prev = flow.estimate_flow(lr, lr_prev)  # F_t: frame t -> t-1
    mask = flow.occlusion_mask(to_prev, flow.estimate_flow(lr_prev, lr))
    sums = []
    for part in _chunks(0, len(lr), FLOW_CHUNK_PAIRS):  # HR flow, mask and warp: ~7 maps a pair, a few pairs at a time
        # HR pixel q lies at LR (q + 1/2) / s - 1/2, where align_corners=False samples; v LR px are v*s HR px.
        hr_flow = F.interpolate(to_prev[part], scale_factor=scale, mode="bilinear", align_corners=False).mul_(scale)
        hr_mask = F.interpolate(mask[part].float(), scale_factor=scale, mode="nearest")
        error = (residual[part] - flow.warp(residual_prev[part], hr_flow)).square_().sum(1, keepdim=True)
        sums.append(torch.stack(((error * hr_mask).sum((1, 2, 3)), hr_mask.sum((1, 2, 3)))))
    return torch.cat(sums, dim=1)


def lr_psnr(out: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """PSNR(D(O), I) in dB, peak 1.0, MSE pooled over the segment; capped at 100 dB."""
    return lr_psnr_and_worst(out, lr, scale)[0]


def lr_psnr_and_worst(out: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[float, int]:
    """`lr_psnr`, and the frame whose own PSNR(D(O_t), I_t) is lowest: where the output departs
    most from the input."""
    _check_pair(out, lr, scale)
    size = (lr.shape[2], lr.shape[3])
    per_frame = torch.cat(
        [
            (bicubic_downscale(_unit(out[c]), size) - _unit(lr[c])).square().sum((1, 2, 3)).double()
            for c in _chunks(0, out.shape[0], _chunk_frames(out))
        ]
    )
    return _psnr_from_mse(per_frame.sum().item() / lr.numel()), int(per_frame.argmax().item())


def detail_gain(out: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """mean |O - B(I)|: how far the result moved from plain bicubic."""
    return bicubic_metrics(out, lr, scale).detail_gain


def light_delta(light: torch.Tensor, strong: torch.Tensor) -> float:
    """mean |L - S| between the light model's output and the strong model's."""
    _check_same(light, strong)
    total = sum(
        (_unit(light[c]) - _unit(strong[c])).abs().sum().item() for c in _chunks(0, len(light), _chunk_frames(light))
    )
    return total / light.numel()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB over all frames, pixels and RGB channels (pooled MSE), peak 1.0, capped at 100 dB."""
    _check_same(a, b)
    sse = sum((_unit(a[c]) - _unit(b[c])).square().sum().item() for c in _chunks(0, len(a), _chunk_frames(a)))
    return _psnr_from_mse(sse / a.numel())


_LUMA = (0.299, 0.587, 0.114)  # BT.601 weights, full range
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2  # (K * L)^2 with L = 1


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM (Wang et al. 2004) on BT.601 luma, Gaussian window 11 / sigma 1.5, 'valid' borders
    (no padding), averaged over all frames and window positions."""
    _check_same(a, b)
    if min(a.shape[2:]) < window:
        raise ValueError(f"frames {tuple(a.shape[2:])} are smaller than the SSIM window {window}")
    g = _gaussian_window(window, sigma, a)
    gh, gv = g.view(1, 1, 1, window), g.view(1, 1, window, 1)
    luma = torch.tensor(_LUMA, device=a.device).view(1, 3, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, gh), gv)  # separable Gaussian

    total, count = 0.0, 0
    for c in _chunks(0, len(a), _chunk_frames(a)):
        x = (_unit(a[c]) * luma).sum(1, keepdim=True)
        y = (_unit(b[c]) * luma).sum(1, keepdim=True)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + _SSIM_C1) * (2 * cxy + _SSIM_C2)) / ((mx * mx + my * my + _SSIM_C1) * (vx + vy + _SSIM_C2))
        total += s.sum().item()
        count += s.numel()
    return total / count


def ewarp(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Flow-warping error of `out` (Lai et al. 2018; formula in the module docstring) with flow and
    occlusions from `ref`; lower is better. NaN for fewer than two frames, or when every pair's
    mask is empty."""
    _check_same(out, ref)
    total, pairs = 0.0, 0
    for cur in _chunks(1, out.shape[0], FLOW_CHUNK_PAIRS):
        prev = slice(cur.start - 1, cur.stop - 1)
        ref_cur, ref_prev = _unit(ref[cur]), _unit(ref[prev])
        to_prev = flow.estimate_flow(ref_cur, ref_prev)  # F_t: frame t -> t-1
        mask = flow.occlusion_mask(to_prev, flow.estimate_flow(ref_prev, ref_cur)).float()
        error = (_unit(out[cur]) - flow.warp(_unit(out[prev]), to_prev)).square().sum(1, keepdim=True)
        counted = mask.sum((1, 2, 3))
        kept = counted > 0
        total += ((error * mask).sum((1, 2, 3))[kept] / counted[kept]).sum().item()
        pairs += int(kept.sum().item())
    return total / pairs if pairs else math.nan
