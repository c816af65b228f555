"""HR clips with a true reference for every frame.

From a photo: a camera filming it (`film`): a pan at any speed from still to `max_speed` LR
pixels per frame, zoom, rotation, hand-held shake, objects cut from the photo moving across it
on their own paths (occluding and uncovering the background), and motion blur from an open
shutter. Each frame is rendered with bicubic resampling of an antialiased reduction of the
photo, so consecutive frames differ by the sub-pixel shifts real footage has. From a video:
consecutive frames (or every 2nd or 3rd, for faster motion), cropped. All randomness comes from
one torch.Generator, so a seed fixes the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from pipeline.training.sources import Source

MAX_BLUR_TAPS = 6


@dataclass(frozen=True)
class MotionRanges:
    """What `draw_motion` draws from. Speeds are in LR pixels per frame (what the model sees)."""

    max_speed: float = 16.0
    # Share of clips drawn slow (under 1 px/frame, where sub-pixel detail accumulates), and fast
    # (over 4 px/frame); the rest in between. Within each band the speed is uniform.
    slow_share: float = 0.3
    fast_share: float = 0.3
    max_zoom: float = 0.01  # relative zoom per frame
    max_rotate_deg: float = 0.5  # per frame
    shake_probability: float = 0.25
    max_shake: float = 1.0  # LR pixels, standard deviation of the per-frame jitter
    object_probability: float = 0.5
    max_objects: int = 2
    blur_probability: float = 0.5  # clips filmed with an open shutter (motion blur)
    # Source pixels per output pixel at frame 0, drawn in [1, max_reduce]: a wider view shows
    # finer detail per pixel, so one photo yields textures at several densities.
    max_reduce: float = 2.0


@dataclass(frozen=True)
class MovingObject:
    """A soft-edged piece of the photo moving over it: where it is cut from (fractions of the
    photo), its size (fraction of the frame), start (fraction of the frame) and velocity (LR px/frame)."""

    source_at: tuple[float, float]
    size: tuple[float, float]
    start: tuple[float, float]
    velocity: tuple[float, float]


@dataclass(frozen=True)
class Motion:
    """One clip's camera and objects. Pan, shake in LR pixels (per frame / per frame's std)."""

    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 0.0
    rotate_deg: float = 0.0
    shake: float = 0.0
    shutter: float = 0.0  # fraction of the frame interval the shutter is open (0: no motion blur)
    objects: tuple[MovingObject, ...] = field(default_factory=tuple)
    reduce: float = 1.0  # photo pixels per HR pixel
    # Where the middle frame looks, as fractions (y, x) of the photo; None: anywhere the move fits.
    centre: tuple[float, float] | None = None

    @property
    def speed(self) -> float:
        return math.hypot(*self.pan)


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def _direction(gen: torch.Generator, speed: float) -> tuple[float, float]:
    angle = _uniform(gen, 0, 2 * math.pi)
    return speed * math.cos(angle), speed * math.sin(angle)


def draw_speed(gen: torch.Generator, ranges: MotionRanges) -> float:
    band = torch.rand((), generator=gen).item()
    if band < ranges.slow_share:
        return _uniform(gen, 0.0, min(1.0, ranges.max_speed))
    if band < ranges.slow_share + ranges.fast_share and ranges.max_speed > 4:
        return _uniform(gen, 4.0, ranges.max_speed)
    return _uniform(gen, min(1.0, ranges.max_speed), min(4.0, ranges.max_speed))


def draw_motion(gen: torch.Generator, ranges: MotionRanges = MotionRanges()) -> Motion:
    """A random camera move with its objects and shutter."""
    pan = _direction(gen, draw_speed(gen, ranges))
    zoom = _uniform(gen, -ranges.max_zoom, ranges.max_zoom)
    rotate = _uniform(gen, -ranges.max_rotate_deg, ranges.max_rotate_deg)
    shake = _uniform(gen, 0, ranges.max_shake) if torch.rand((), generator=gen).item() < ranges.shake_probability else 0
    shutter = _uniform(gen, 0.3, 1.0) if torch.rand((), generator=gen).item() < ranges.blur_probability else 0.0
    objects = []
    if torch.rand((), generator=gen).item() < ranges.object_probability:
        for _ in range(int(torch.randint(1, ranges.max_objects + 1, (), generator=gen))):
            objects.append(
                MovingObject(
                    source_at=(_uniform(gen, 0, 1), _uniform(gen, 0, 1)),
                    size=(_uniform(gen, 0.2, 0.6), _uniform(gen, 0.2, 0.6)),
                    start=(_uniform(gen, 0.1, 0.9), _uniform(gen, 0.1, 0.9)),
                    velocity=_direction(gen, draw_speed(gen, ranges)),
                )
            )
    return Motion(pan, zoom, rotate, shake, shutter, tuple(objects), _uniform(gen, 1.0, ranges.max_reduce))


def _grid(cx: torch.Tensor, cy: torch.Tensor, rw: int, rh: int) -> torch.Tensor:
    """Pixel positions in a (rh, rw) image -> grid_sample's [-1, 1] (align_corners=False)."""
    return torch.stack([(2 * cx + 1) / rw - 1, (2 * cy + 1) / rh - 1], dim=-1)


def _object_mask(h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """(1, 1, h, w) soft-edged blob: an ellipse with a wobbly outline and a 1-3 px feathered edge."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    angle = torch.atan2(ys, xs)
    wobble = 1 + sum(
        _uniform(gen, -0.15, 0.15) * torch.cos(k * angle + _uniform(gen, 0, 2 * math.pi)) for k in (2, 3, 5)
    )
    radius = torch.sqrt(xs**2 + ys**2) / (0.9 * wobble)
    feather = _uniform(gen, 1.0, 3.0) / max(h, w) * 2
    return ((1 - radius) / feather).clamp(0, 1).view(1, 1, h, w)


def film(
    source: Source,
    frames: int,
    size: tuple[int, int],
    motion: Motion,
    scale: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """(frames, 3, h, w) float in [0, 1]: the photo filmed with `motion` (its LR speeds times
    `scale` in the HR frames made here). A photo too small for the whole move gets the fastest
    move of the same shape that fits."""
    h, w = size
    image = source.frames[0]
    ih, iw = image.shape[-2:]
    pan = torch.tensor(motion.pan) * scale
    rotate = math.radians(motion.rotate_deg)
    shake = motion.shake * scale
    # Room: the view, its travel over the clip (and the shutter's; the path is centred on the
    # view), shake and a margin must stay inside the photo.
    span = frames - 1 + motion.shutter
    extent = max(h, w)
    travel = span * (float(pan.abs().max()) + (abs(motion.zoom) + abs(rotate)) * extent) + 6 * shake
    # Each side of the view must fit, with 4 px to spare on either end, at the reduction.
    fit = min((ih - 2) / (h + 8), (iw - 2) / (w + 8))
    if fit < 1:
        raise ValueError(f"{source.path}: {iw}x{ih} is too small for {w}x{h} clips")
    reduce = min(motion.reduce, fit)
    room = min((ih - 2) / reduce - h - 8, (iw - 2) / reduce - w - 8)  # what the travel may use
    shrink = min(1.0, room / travel) if travel > 0 else 1.0
    pan, shake = pan * shrink, shake * shrink
    zoom, rotate = motion.zoom * shrink, rotate * shrink
    reach = travel * shrink / 2 + 4
    # Crop the region the move covers, reduce it with an antialiased filter, then sample the
    # frames at one region pixel per output pixel (bicubic is alias-free at that rate).
    rh, rw = math.ceil(h + 2 * reach), math.ceil(w + 2 * reach)
    ch, cw = min(ih, math.ceil(rh * reduce)), min(iw, math.ceil(rw * reduce))
    if motion.centre is None:
        y0 = int(torch.randint(0, ih - ch + 1, (), generator=gen))
        x0 = int(torch.randint(0, iw - cw + 1, (), generator=gen))
    else:
        y0 = min(max(0, round(motion.centre[0] * ih - ch / 2)), ih - ch)
        x0 = min(max(0, round(motion.centre[1] * iw - cw / 2)), iw - cw)
    region = image[:, y0 : y0 + ch, x0 : x0 + cw].float().unsqueeze(0) / 255.0
    region = F.interpolate(region, size=(rh, rw), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
    offset = torch.tensor([_uniform(gen, -0.5, 0.5), _uniform(gen, -0.5, 0.5)])  # sub-pixel start
    # The path is centred on the clip's middle moment, so all of it stays in the region.
    start = -pan * (frames - 1) / 2
    jitter = torch.randn(frames, 2, generator=gen) * shake
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    sprites = [_sprite(image, obj, size, gen) for obj in motion.objects]
    # Motion blur: the mean of renders across the open shutter, as many as the fastest motion
    # needs to stay smooth (one per two HR pixels it moves, at most MAX_BLUR_TAPS).
    fastest = max([float(pan.norm())] + [math.hypot(*o.velocity) * scale for o in motion.objects])
    taps = 1 if not motion.shutter else max(1, min(MAX_BLUR_TAPS, math.ceil(fastest * motion.shutter / 2)))
    # Bilinear within a blur: the average hides its softness, at a third of bicubic's cost.
    mode = "bicubic" if taps == 1 else "bilinear"
    times = [(k + 0.5) / taps * motion.shutter - motion.shutter / 2 for k in range(taps)] if taps > 1 else [0.0]
    out = torch.zeros(frames, 3, h, w)
    for tau in times:
        grids, moments = [], []
        for t in range(frames):
            moment = t + tau
            s, a = (1.0 + zoom) ** moment, rotate * moment
            shift = start + pan * moment + offset + jitter[t]
            cx = (rw - 1) / 2 + shift[0] + s * (math.cos(a) * xs - math.sin(a) * ys)
            cy = (rh - 1) / 2 + shift[1] + s * (math.sin(a) * xs + math.cos(a) * ys)
            grids.append(_grid(cx, cy, rw, rh))
            moments.append(moment)
        rendered = F.grid_sample(
            region.expand(frames, -1, -1, -1),
            torch.stack(grids),
            mode=mode,
            padding_mode="border",
            align_corners=False,
        )
        for (sprite, mask, obj) in sprites:
            rendered = _composite(rendered, sprite, mask, obj, moments, size, scale)
        out += rendered.clamp_(0.0, 1.0)
    return out.div_(len(times))


def _sprite(
    image: torch.Tensor, obj: MovingObject, size: tuple[int, int], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, MovingObject]:
    """The object's pixels, cut from the photo at its source position, and its soft mask."""
    h, w = size
    oh, ow = max(4, round(obj.size[0] * h)), max(4, round(obj.size[1] * w))
    ih, iw = image.shape[-2:]
    oh, ow = min(oh, ih), min(ow, iw)
    y0 = round(obj.source_at[0] * (ih - oh))
    x0 = round(obj.source_at[1] * (iw - ow))
    sprite = image[:, y0 : y0 + oh, x0 : x0 + ow].float().unsqueeze(0) / 255.0
    return sprite, _object_mask(oh, ow, gen), obj


def _composite(
    frames: torch.Tensor,
    sprite: torch.Tensor,
    mask: torch.Tensor,
    obj: MovingObject,
    moments: list[float],
    size: tuple[int, int],
    scale: int,
) -> torch.Tensor:
    """Frames with the object laid over them at its position at each moment (sub-pixel, bicubic)."""
    h, w = size
    oh, ow = sprite.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    grids = []
    for moment in moments:
        top = obj.start[0] * h - oh / 2 + obj.velocity[1] * scale * moment
        left = obj.start[1] * w - ow / 2 + obj.velocity[0] * scale * moment
        grids.append(_grid(xs - left, ys - top, ow, oh))
    grid = torch.stack(grids)
    n = len(moments)
    pixels = F.grid_sample(sprite.expand(n, -1, -1, -1), grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    alpha = F.grid_sample(mask.expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return frames * (1 - alpha) + pixels.clamp(0, 1) * alpha


def still_motion(motion: Motion) -> Motion:
    """The same clip's framing with nothing moving (the benchmark's static clip)."""
    return replace(motion, pan=(0.0, 0.0), zoom=0.0, rotate_deg=0.0, shake=0.0, shutter=0.0, objects=())


def video_clip(source: Source, frames: int, size: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """(frames, 3, h, w) float in [0, 1]: frames of a video at a random crop, consecutive or
    every 2nd or 3rd when the video is long enough (faster motion)."""
    t, _, ih, iw = source.frames.shape
    h, w = size
    if t < frames or ih < h or iw < w:
        raise ValueError(f"{source.path}: {t} frames of {iw}x{ih} cannot give {frames} frames of {w}x{h}")
    stride = int(torch.randint(1, min(3, (t - 1) // max(1, frames - 1)) + 1, (), generator=gen))
    t0 = int(torch.randint(0, t - (frames - 1) * stride, (), generator=gen))
    y0 = int(torch.randint(0, ih - h + 1, (), generator=gen))
    x0 = int(torch.randint(0, iw - w + 1, (), generator=gen))
    picked = source.frames[t0 : t0 + (frames - 1) * stride + 1 : stride, :, y0 : y0 + h, x0 : x0 + w]
    return picked.float() / 255.0


def make_clip(
    source: Source,
    frames: int,
    size: tuple[int, int],
    scale: int,
    gen: torch.Generator,
    ranges: MotionRanges = MotionRanges(),
) -> torch.Tensor:
    """A clip from either kind of source (videos too short or too small are filmed as photos)."""
    t, _, ih, iw = source.frames.shape
    if source.is_video and t >= frames and ih >= size[0] and iw >= size[1]:
        return video_clip(source, frames, size, gen)
    return film(source, frames, size, draw_motion(gen, ranges), scale, gen)
