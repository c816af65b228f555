"""LR inputs made from HR clips: the bicubic ("BI") track and a realistic track.

BI: antialiased bicubic downscaling (the metrics' D), rounded to 8 bits like decoded video.
Realistic, in the order a camera and a delivery chain apply them: optical blur (Gaussian, on
the HR frames), downscaling, sensor noise (Gaussian), 8-bit rounding, optional interlacing
(odd lines from the next frame, as a weave of two fields would show), then a real H.264
round trip through libx264 at a random CRF. Draws come from one torch.Generator.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.metrics import bicubic_downscale


@dataclass(frozen=True)
class RealisticDegradation:
    """Ranges drawn uniformly per clip. Blur sigma is in LR pixels, noise sigma in code values."""

    blur_sigma: tuple[float, float] = (0.2, 0.8)
    noise_sigma: tuple[float, float] = (0.0, 3.0)
    crf: tuple[int, int] = (18, 32)
    interlace_probability: float = 0.0


def quantize(frames: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid decoded video lives on."""
    return frames.clamp(0.0, 1.0).mul(255.0).round_().div_(255.0)


def bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """BI track: (T, 3, H, W) -> (T, 3, H/s, W/s), H and W multiples of s."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    return quantize(bicubic_downscale(hr, (h // scale, w // scale)))


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (T, C, H, W), reflect-padded so borders stay unbiased."""
    if sigma <= 0:
        return frames
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=frames.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = (k / k.sum()).to(frames.device)
    c = frames.shape[1]
    out = F.pad(frames, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def h264_round_trip(frames: torch.Tensor, crf: int) -> torch.Tensor:
    """Encode (T, 3, h, w) in [0, 1] with libx264 (yuv420p) and decode it back."""
    t, _, h, w = frames.shape
    ph, pw = (
        h % 2,
        w % 2,
    )  # 4:2:0 needs even sizes: pad by one edge row/column, crop after
    padded = F.pad(frames, (0, pw, 0, ph), mode="replicate") if ph or pw else frames
    rgb = padded.mul(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w + pw, h + ph, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        for frame in rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, "r") as src:
        decoded = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {t} frames")
    out_t = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255.0
    return out_t[..., :h, :w]


def interlace(frames: torch.Tensor) -> torch.Tensor:
    """Odd lines from the next frame (the last frame keeps its own): combing on motion."""
    out = frames.clone()
    out[:-1, :, 1::2] = frames[1:, :, 1::2]
    return out


def realistic_lr(
    hr: torch.Tensor,
    scale: int,
    gen: torch.Generator,
    spec: RealisticDegradation = RealisticDegradation(),
) -> torch.Tensor:
    """Realistic track: (T, 3, H, W) -> degraded (T, 3, H/s, W/s) on the 8-bit grid."""

    def draw(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=gen).item()

    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    lr = bicubic_downscale(gaussian_blur(hr, draw(*spec.blur_sigma) * scale), (h // scale, w // scale))
    noise = draw(*spec.noise_sigma) / 255.0
    if noise > 0:
        lr = lr + noise * torch.randn(lr.shape, generator=gen)
    lr = quantize(lr)
    if torch.rand((), generator=gen).item() < spec.interlace_probability:
        lr = interlace(lr)
    crf = int(torch.randint(spec.crf[0], spec.crf[1] + 1, (), generator=gen))
    return h264_round_trip(lr, crf)
