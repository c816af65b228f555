"""HR clips with a true reference for every frame.

From a photo: a smooth sub-pixel camera move (pan, zoom, small rotation) rendered with
bicubic resampling, so consecutive frames differ by fractional shifts as in real footage and
the temporal model has real sub-pixel information to gather. From a video: consecutive
frames, cropped. All randomness comes from one torch.Generator, so a seed fixes the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.training.sources import Source


@dataclass(frozen=True)
class CameraMotion:
    """Ranges of the camera move per frame, in output pixels / relative zoom / degrees."""

    max_pan: float = 2.5
    max_zoom: float = 0.006
    max_rotate_deg: float = 0.25
    # Source pixels per output pixel at frame 0, drawn in [1, max_reduce]: a wider view shows
    # finer detail per pixel, so one photo yields textures at several densities.
    max_reduce: float = 2.0


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def camera_clip(
    source: Source,
    frames: int,
    size: tuple[int, int],
    gen: torch.Generator,
    motion: CameraMotion = CameraMotion(),
) -> torch.Tensor:
    """(frames, 3, h, w) float in [0, 1]: the photo filmed by a slowly moving camera."""
    h, w = size
    image = source.frames[0]
    ih, iw = image.shape[-2:]
    pan = torch.tensor([_uniform(gen, -1, 1), _uniform(gen, -1, 1)]) * motion.max_pan
    zoom = _uniform(gen, -motion.max_zoom, motion.max_zoom)
    rotate = math.radians(_uniform(gen, -motion.max_rotate_deg, motion.max_rotate_deg))
    # The view must stay inside the photo for the whole clip: a small photo gets a smaller
    # move, and the reduction is bounded by what room is left.
    max_reach = min(ih - 2 - h, iw - 2 - w) / 2 - 4
    if max_reach < 0:
        raise ValueError(f"{source.path}: {iw}x{ih} is too small for {w}x{h} clips")
    travel = (frames - 1) * (float(pan.abs().max()) + (abs(zoom) + abs(rotate)) * max(h, w))
    if travel > max_reach:
        shrink = max_reach / travel
        pan, zoom, rotate, travel = (
            pan * shrink,
            zoom * shrink,
            rotate * shrink,
            max_reach,
        )
    reach = travel + 4
    room = min((ih - 2) / (h + 2 * reach), (iw - 2) / (w + 2 * reach))
    reduce = _uniform(gen, 1.0, min(motion.max_reduce, room))
    # Crop the region the move covers, reduce it with an antialiased filter, then sample
    # frames at one region pixel per output pixel (bicubic is alias-free at that rate).
    rh, rw = math.ceil(h + 2 * reach), math.ceil(w + 2 * reach)
    ch, cw = min(ih, math.ceil(rh * reduce)), min(iw, math.ceil(rw * reduce))
    y0 = int(torch.randint(0, ih - ch + 1, (), generator=gen))
    x0 = int(torch.randint(0, iw - cw + 1, (), generator=gen))
    region = image[:, y0 : y0 + ch, x0 : x0 + cw].float().unsqueeze(0) / 255.0
    region = F.interpolate(region, size=(rh, rw), mode="bicubic", antialias=True, align_corners=False)
    offset = torch.tensor([_uniform(gen, -0.5, 0.5), _uniform(gen, -0.5, 0.5)])  # sub-pixel start
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    grids = []
    for t in range(frames):
        s, a = (1.0 + zoom) ** t, rotate * t
        cx = (rw - 1) / 2 + offset[0] + pan[0] * t + s * (math.cos(a) * xs - math.sin(a) * ys)
        cy = (rh - 1) / 2 + offset[1] + pan[1] * t + s * (math.sin(a) * xs + math.cos(a) * ys)
        # Pixel centres to grid_sample's [-1, 1] (align_corners=False convention).
        grids.append(torch.stack([(2 * cx + 1) / rw - 1, (2 * cy + 1) / rh - 1], dim=-1))
    grid = torch.stack(grids)
    out = F.grid_sample(
        region.expand(frames, -1, -1, -1),
        grid,
        mode="bicubic",
        padding_mode="border",
        align_corners=False,
    )
    return out.clamp_(0.0, 1.0)


def video_clip(source: Source, frames: int, size: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """(frames, 3, h, w) float in [0, 1]: consecutive frames of a video, at a random crop."""
    t, _, ih, iw = source.frames.shape
    h, w = size
    if t < frames or ih < h or iw < w:
        raise ValueError(f"{source.path}: {t} frames of {iw}x{ih} cannot give {frames} frames of {w}x{h}")
    t0 = int(torch.randint(0, t - frames + 1, (), generator=gen))
    y0 = int(torch.randint(0, ih - h + 1, (), generator=gen))
    x0 = int(torch.randint(0, iw - w + 1, (), generator=gen))
    return source.frames[t0 : t0 + frames, :, y0 : y0 + h, x0 : x0 + w].float() / 255.0


def make_clip(
    source: Source,
    frames: int,
    size: tuple[int, int],
    gen: torch.Generator,
    motion: CameraMotion = CameraMotion(),
) -> torch.Tensor:
    """A clip from either kind of source (videos too short for `frames` are filmed as photos)."""
    if source.is_video and source.frames.shape[0] >= frames:
        return video_clip(source, frames, size, gen)
    return camera_clip(source, frames, size, gen, motion)
