"""LR inputs made from HR clips: the bicubic ("BI") track and a realistic track.

BI: antialiased bicubic downscaling (the metrics' D), rounded to 8 bits like decoded video.

Realistic, in the order a camera, a tape and a delivery chain apply them, each step drawn per
clip (`RealisticDegradation` holds the ranges and how often each step happens):

1. optical blur (Gaussian, on the HR frames);
2. downscaling by one of the kernels other tools use (`KERNELS`: bicubic with a = -0.5 and
   -0.75, Lanczos-2/3, bilinear, area, with and without antialiasing): a model that knows one
   kernel only gains little on another;
3. sensor noise: Gaussian plus signal-dependent (shot) noise, sometimes on chroma mostly;
4. chroma subsampling and bleed (4:2:2, 4:2:0, 4:1:1; chroma blurred and shifted sideways);
5. tape damage (heritage footage): line jitter (time-base error), a head-switching band at the
   bottom, dropout streaks;
6. interlacing: odd lines from the next frame, as a weave of two fields shows motion;
7. 8-bit rounding, then a real round trip through one of H.264, HEVC, MPEG-2 or MPEG-4 part 2
   at a random quality.

Draws come from one torch.Generator.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import av
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.quality.metrics import bicubic_downscale


def _cubic(a: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def kernel(x: torch.Tensor) -> torch.Tensor:
        x = x.abs()
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))

    return kernel


def _lanczos(lobes: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def kernel(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x.abs() < lobes, torch.sinc(x) * torch.sinc(x / lobes), torch.zeros_like(x))

    return kernel


def _triangle(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp_min(0)


def _box(x: torch.Tensor) -> torch.Tensor:
    return ((x > -0.5) & (x <= 0.5)).to(x.dtype)


# name -> (kernel, support radius in source pixels at scale 1)
KERNELS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float]] = {
    "bicubic-0.5": (_cubic(-0.5), 2.0),
    "bicubic-0.75": (_cubic(-0.75), 2.0),
    "lanczos2": (_lanczos(2), 2.0),
    "lanczos3": (_lanczos(3), 3.0),
    "bilinear": (_triangle, 1.0),
    "area": (_box, 0.5),
}


@lru_cache(maxsize=256)
def resample_matrix(size_in: int, size_out: int, kernel: str, antialias: bool) -> torch.Tensor:
    """(size_out, size_in) weights of 1-D resampling with a named kernel, pixel centres aligned
    (align_corners=False), edges repeated. With `antialias` the kernel is stretched by the
    reduction factor (what PIL, FFmpeg's swscale and torch's antialias do); without it, it samples
    the source as an upscaler would (aliasing, as some cheap scalers do). `area` is always a box
    over the source footprint."""
    fn, support = KERNELS[kernel]
    ratio = size_in / size_out
    stretch = ratio if (antialias or kernel == "area") and ratio > 1 else 1.0
    centres = (torch.arange(size_out, dtype=torch.float64) + 0.5) * ratio - 0.5
    reach = math.ceil(support * stretch) + 1
    taps = torch.arange(-reach, reach + 1, dtype=torch.float64)
    positions = centres.floor()[:, None] + taps[None, :]  # (out, taps) source pixels
    weights = fn((positions - centres[:, None]) / stretch)
    weights = weights / weights.sum(1, keepdim=True)
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    matrix.scatter_add_(1, positions.clamp(0, size_in - 1).long(), weights)
    return matrix.float()


def resample(frames: torch.Tensor, size: tuple[int, int], kernel: str, antialias: bool = True) -> torch.Tensor:
    """(..., H, W) -> (..., h, w) by separable resampling with a named kernel."""
    rows = resample_matrix(frames.shape[-2], size[0], kernel, antialias).to(frames.device, frames.dtype)
    cols = resample_matrix(frames.shape[-1], size[1], kernel, antialias).to(frames.device, frames.dtype)
    return rows @ frames @ cols.t()


@dataclass(frozen=True)
class RealisticDegradation:
    """Ranges drawn uniformly per clip, and how often each optional step happens. Blur sigma is
    in LR pixels, noise sigma in code values, shifts in LR pixels."""

    blur_sigma: tuple[float, float] = (0.0, 1.0)
    kernels: tuple[str, ...] = tuple(KERNELS)
    antialias_probability: float = 0.75
    noise_sigma: tuple[float, float] = (0.0, 4.0)
    shot_noise_probability: float = 0.3
    chroma_probability: float = 0.5
    chroma_bleed: tuple[float, float] = (0.0, 2.0)  # extra horizontal chroma blur, LR pixels
    tape_probability: float = 0.1
    interlace_probability: float = 0.1
    codecs: tuple[str, ...] = ("h264", "h264", "hevc", "mpeg2", "mpeg4")
    crf: tuple[int, int] = (18, 34)  # H.264 / HEVC
    qscale: tuple[int, int] = (2, 10)  # MPEG-2 / MPEG-4 part 2


def quantize(frames: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid decoded video lives on."""
    return frames.clamp(0.0, 1.0).mul(255.0).round_().div_(255.0)


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """BI track: (T, 3, H, W) -> (T, 3, H/s, W/s), H and W multiples of s."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    return quantize(bicubic_downscale(hr, (h // scale, w // scale)))


def _blur_1d(frames: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian blur of (T, C, H, W) along H (dim -2) or W (dim -1), reflect-padded."""
    if sigma <= 0:
        return frames
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=frames.dtype, device=frames.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = frames.shape[1]
    if dim == -1:
        padded = F.pad(frames, (radius, radius, 0, 0), mode="reflect" if frames.shape[-1] > radius else "replicate")
        return F.conv2d(padded, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    padded = F.pad(frames, (0, 0, radius, radius), mode="reflect" if frames.shape[-2] > radius else "replicate")
    return F.conv2d(padded, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (T, C, H, W), reflect-padded so borders stay unbiased."""
    return _blur_1d(_blur_1d(frames, sigma, -1), sigma, -2)


_RGB_TO_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _to_ycc(frames: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,tjhw->tihw", _RGB_TO_YCC.to(frames), frames)


def _to_rgb(frames: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,tjhw->tihw", torch.linalg.inv(_RGB_TO_YCC).to(frames), frames)


def chroma_degrade(frames: torch.Tensor, factor: tuple[int, int], bleed: float, shift: float) -> torch.Tensor:
    """Chroma at 1/factor (h, w) resolution (box down, bilinear up), blurred sideways by `bleed`
    and displaced by `shift` pixels, as composite and tape chains leave it. Luma untouched."""
    ycc = _to_ycc(frames)
    chroma = ycc[:, 1:]
    h, w = chroma.shape[-2:]
    small = F.avg_pool2d(chroma, factor, ceil_mode=True) if factor != (1, 1) else chroma
    chroma = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    chroma = _blur_1d(chroma, bleed, -1)
    if shift:
        chroma = _shift_rows(chroma, torch.full((h,), shift))
    return _to_rgb(torch.cat((ycc[:, :1], chroma), 1))


def _shift_rows(frames: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each row r of (T, C, H, W) moved right by shifts[r] pixels (linear interpolation, edges repeated)."""
    h, w = frames.shape[-2:]
    xs = torch.arange(w, dtype=frames.dtype)[None, :] - shifts[:, None].to(frames.dtype)
    ys = torch.arange(h, dtype=frames.dtype)[:, None].expand(h, w)
    grid = torch.stack((xs * 2 / max(w - 1, 1) - 1, ys * 2 / max(h - 1, 1) - 1), -1)
    return F.grid_sample(
        frames, grid.expand(frames.shape[0], -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=True
    )


def tape_damage(frames: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Line jitter (a smooth random horizontal wander of the lines, per frame), a head-switching
    band (the bottom lines torn sideways and noisy) and dropout streaks (short bright lines)."""
    t, _, h, w = frames.shape
    out = []
    amount = 0.2 + 0.8 * torch.rand((), generator=gen).item()
    band = int(torch.randint(2, max(3, h // 30) + 1, (), generator=gen))
    for i in range(t):
        wander = torch.randn(h + 8, generator=gen).cumsum(0)
        wander = F.avg_pool1d(wander.view(1, 1, -1), 9, stride=1).view(-1)[:h]
        wander = (wander - wander.mean()) / (wander.std() + 1e-6) * amount
        tear = torch.zeros(h)
        tear[h - band :] = torch.linspace(0, 3 + 10 * torch.rand((), generator=gen).item(), band)
        frame = _shift_rows(frames[i : i + 1], wander + tear)
        frame[..., h - band :, :] += 0.05 * torch.randn(frame[..., h - band :, :].shape, generator=gen)
        for _ in range(int(torch.randint(0, 4, (), generator=gen))):
            y = int(torch.randint(0, h, (), generator=gen))
            x0 = int(torch.randint(0, w, (), generator=gen))
            length = int(torch.randint(3, max(4, w // 6), (), generator=gen))
            frame[..., y, x0 : x0 + length] = 0.85 + 0.15 * torch.rand((), generator=gen).item()
        out.append(frame)
    return torch.cat(out)


def interlace(frames: torch.Tensor) -> torch.Tensor:
    """Odd lines from the next frame (the last frame keeps its own): combing on motion."""
    out = frames.clone()
    out[:-1, :, 1::2] = frames[1:, :, 1::2]
    return out


_CODECS = {"h264": "libx264", "hevc": "libx265", "mpeg2": "mpeg2video", "mpeg4": "mpeg4"}


def codec_round_trip(frames: torch.Tensor, codec: str, quality: int) -> torch.Tensor:
    """Encode (T, 3, h, w) in [0, 1] as yuv420p with `codec` (crf for h264/hevc, qscale for
    mpeg2/mpeg4) and decode it back."""
    t, _, h, w = frames.shape
    # Whole macroblocks for every codec, and 64 px at least (x265 aborts below its CTU size): pad
    # by repeating the edge, crop after.
    ph, pw = max(64, h + -h % 16) - h, max(64, w + -w % 16) - w
    padded = F.pad(frames, (0, pw, 0, ph), mode="replicate") if ph or pw else frames
    rgb = padded.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream(_CODECS[codec], rate=25)
        stream.width, stream.height, stream.pix_fmt = w + pw, h + ph, "yuv420p"
        stream.codec_context.thread_count = 1  # one thread: the same bits every time (and clips are small)
        if codec == "h264":
            stream.options = {"crf": str(quality), "preset": "veryfast", "tune": "zerolatency"}
        elif codec == "hevc":
            x265 = "log-level=none:pools=1:frame-threads=1"
            stream.options = {"crf": str(quality), "preset": "ultrafast", "x265-params": x265}
        else:
            stream.codec_context.qscale = quality
            stream.options = {"g": "12", "bf": "0"}
        for frame in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, "r") as src:
        decoded = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"{codec} round trip returned {len(decoded)} of {t} frames")
    out_t = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255.0
    return out_t[..., :h, :w]


def h264_round_trip(frames: torch.Tensor, crf: int) -> torch.Tensor:
    """Encode (T, 3, h, w) in [0, 1] with libx264 (yuv420p) and decode it back."""
    return codec_round_trip(frames, "h264", crf)


def realistic_lr(
    hr: torch.Tensor,
    scale: int,
    gen: torch.Generator,
    spec: RealisticDegradation = RealisticDegradation(),
) -> torch.Tensor:
    """Realistic track: (T, 3, H, W) -> degraded (T, 3, H/s, W/s) on the 8-bit grid."""

    def draw(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=gen).item()

    def happens(probability: float) -> bool:
        return torch.rand((), generator=gen).item() < probability

    def pick(options: tuple[str, ...]) -> str:
        return options[int(torch.randint(len(options), (), generator=gen))]

    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    lr = resample(
        gaussian_blur(hr, draw(*spec.blur_sigma) * scale),
        (h // scale, w // scale),
        pick(spec.kernels),
        antialias=happens(spec.antialias_probability),
    )
    noise = draw(*spec.noise_sigma) / 255.0
    if noise > 0:
        if happens(spec.shot_noise_probability):  # brighter pixels noisier, as photon noise
            lr = lr + noise * 2 * lr.clamp(0, 1).sqrt() * torch.randn(lr.shape, generator=gen)
        else:
            lr = lr + noise * torch.randn(lr.shape, generator=gen)
    if happens(spec.chroma_probability):
        factor = [(1, 2), (2, 2), (1, 4)][int(torch.randint(3, (), generator=gen))]
        lr = chroma_degrade(lr, factor, draw(*spec.chroma_bleed), draw(-1.0, 1.0))
    if happens(spec.tape_probability):
        lr = tape_damage(lr, gen)
    if happens(spec.interlace_probability):
        lr = interlace(lr)
    lr = quantize(lr)
    codec = pick(spec.codecs)
    quality = spec.crf if codec in ("h264", "hevc") else spec.qscale
    return codec_round_trip(lr, codec, int(torch.randint(quality[0], quality[1] + 1, (), generator=gen)))
