"""Running the two models over a segment's frames (Ray-free; the pool actors call these).

Frames travel as RGB arrays (T, H, W, 3), uint8, or uint16 for outputs above 8 bits; the float
conversion happens on the model's device so only integers cross the host-device boundary and the
object store.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch

from pipeline.models.tiling import tiled

_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _shared(frames: np.ndarray) -> torch.Tensor:
    """A tensor over the array's memory. Ray hands out read-only views of object-store memory;
    the tensors made here are only read, so no copy is needed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(frames)


def to_tensor(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(T, H, W, 3) uint8 or uint16 -> (T, 3, H, W) float in [0, 1] on `device`."""
    t = _shared(np.ascontiguousarray(frames))
    if torch.device(device).type == "cuda":
        # Page-locked: the copy to the GPU is then one DMA that the host does not wait for (from
        # pageable memory CUDA stages it through a pinned buffer, synchronously).
        t = t.pin_memory()
    return t.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(_MAX[frames.dtype])


def to_pixels(frames: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8 or uint16 on the host, rounded."""
    dtype = np.dtype(dtype)
    peak = _MAX[dtype]
    if frames.device.type == "cpu":
        out = np.empty((frames.shape[0], *frames.shape[2:], 3), dtype)
        target = torch.from_numpy(out)
        # A frame at a time, straight into the result: the float intermediates stay cache-sized
        # (3-4x faster than converting the segment whole, which makes two segment-sized copies;
        # measured once by hand: docs/performance.md, "CPU").
        for i, frame in enumerate(frames):
            target[i].copy_(_rounded(frame, peak).permute(1, 2, 0))
        return out
    # On a GPU, whole: 1-2 bytes per value cross to the host, not 4.
    # torch has no uint16 arithmetic on every device: go through int32 there.
    ints = _rounded(frames, peak).to(torch.uint8 if peak == 255.0 else torch.int32).permute(0, 2, 3, 1).contiguous()
    host = torch.empty(ints.shape, dtype=ints.dtype, pin_memory=True)
    host.copy_(ints, non_blocking=True)
    torch.cuda.current_stream(ints.device).synchronize()  # the copy is asynchronous: done before numpy reads
    return host.numpy().astype(dtype, copy=False)


def pixel_frames(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(T, H, W, 3) pixels as (T, 3, H, W) for the metrics (pipeline/quality/metrics.py): on the CPU a
    view of the integers, which the metrics convert a few frames at a time, so a segment is never
    held as float (4 bytes a value, a GiB and more for an SD x2 segment); on a GPU, float frames."""
    if torch.device(device).type == "cpu":
        return _shared(frames).permute(0, 3, 1, 2)
    return to_tensor(frames, device)


def _rounded(frames: torch.Tensor, peak: float) -> torch.Tensor:
    """Float frames in [0, 1] scaled to integers 0..peak (still float): clamped, rounded to nearest."""
    return frames.mul(peak).round_().clamp_(0.0, peak)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8 on the host, rounded."""
    return to_pixels(frames, np.uint8)


@torch.inference_mode()
def run_strong(
    model: torch.nn.Module,
    lr: torch.Tensor,
    core: slice,
    radius: int,
    frames_per_pass: int,
    tile: int | None = None,
) -> torch.Tensor:
    """Upscale the `core` frames of an LR clip (T, 3, h, w), using the rest as temporal context.

    The clip is processed in passes of at most `frames_per_pass` output frames, each with
    `radius` context frames on both sides: output frame t depends only on frames t-R..t+R,
    so the passes give the same result as one pass over the clip, at bounded memory. With
    `tile`, each pass goes through the model in overlapping tiles of at most `tile` LR pixels
    a side (pipeline/models/tiling.py), the same result again up to float rounding. Float32 out.
    """
    return torch.cat(list(_strong_passes(model, lr, core, radius, frames_per_pass, tile)))


def upscale_pixels(
    model: torch.nn.Module,
    lr: torch.Tensor,
    core: slice,
    radius: int,
    frames_per_pass: int,
    dtype: np.dtype,
    tile: int | None = None,
) -> np.ndarray:
    """`run_strong` to pixels (T, H, W, 3) of `dtype`, a pass at a time: float HR frames exist for
    one pass only (an SD x2 segment of 8 frames is 146 MB as float, 36 MB as 8-bit pixels)."""
    parts = [to_pixels(hr, dtype) for hr in _strong_passes(model, lr, core, radius, frames_per_pass, tile)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@torch.inference_mode()  # torch wraps each step of a generator
def _strong_passes(
    model: torch.nn.Module, lr: torch.Tensor, core: slice, radius: int, frames_per_pass: int, tile: int | None
) -> Iterator[torch.Tensor]:
    """`run_strong`'s passes, in order: each pass's float32 output frames."""
    # The flow of the pairs the passes read, once, on whole frames: each pair's flow depends only
    # on that pair, so every pass and tile gets exactly what a single whole pass would.
    first, last = max(0, core.start - radius), min(lr.shape[0], core.stop + radius)
    motion = model.motion(lr[first:last].unsqueeze(0)) if hasattr(model, "motion") else None
    for start in range(core.start, core.stop, frames_per_pass):
        stop = min(start + frames_per_pass, core.stop)
        lo, hi = max(0, start - radius), min(lr.shape[0], stop + radius)
        keep = slice(start - lo, stop - lo)
        clip = lr[lo:hi].unsqueeze(0)
        aux = () if motion is None else (motion[:, lo - first : hi - first],)
        yield tiled(partial(_forward_kept, model, keep), clip, tile, *_reach(model, tile), *aux)[0].float()


@torch.inference_mode()
def run_light(
    model: torch.nn.Module,
    hr: torch.Tensor,
    frames_per_pass: int,
    tile: int | None = None,
    passed: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Refine HR frames (T, 3, H, W) a few frames at a time (the light model is per frame), in
    overlapping tiles of at most `tile` HR pixels a side if given; `passed(n)` after each pass,
    with the n frames done so far (the job's progress). Float32 out."""
    outputs = []
    for i in range(0, hr.shape[0], frames_per_pass):
        outputs.append(tiled(model, hr[i : i + frames_per_pass], tile, *_reach(model, tile)).float())
        if passed is not None:
            passed(min(i + frames_per_pass, hr.shape[0]))
    return torch.cat(outputs)


def refine_pixels(
    model: torch.nn.Module,
    hr: np.ndarray,
    device: torch.device | str,
    frames_per_pass: int,
    tile: int | None = None,
    passed: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`run_light` on pixels (T, H, W, 3), a pass at a time from pixels to pixels: float frames
    exist for one pass only. Pixels of the same type out."""
    out = np.empty_like(hr)
    for i in range(0, hr.shape[0], frames_per_pass):
        part = to_tensor(hr[i : i + frames_per_pass], device)
        out[i : i + frames_per_pass] = to_pixels(run_light(model, part, frames_per_pass, tile), hr.dtype)
        if passed is not None:
            passed(min(i + frames_per_pass, hr.shape[0]))
    return out


def _forward_kept(model: torch.nn.Module, keep: slice, clip: torch.Tensor, *motion: torch.Tensor) -> torch.Tensor:
    return model(clip, keep, *motion)


def _reach(model: torch.nn.Module, tile: int | None) -> tuple[int, int]:
    """The model's spatial receptive radius and tile alignment (pipeline/models/tiling.py), read only when
    tiling: any module runs whole frames."""
    return (model.spatial_radius, model.spatial_align) if tile is not None else (0, 1)
