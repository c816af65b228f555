"""Spatial tiling with overlap: frames too big for the device's memory go through a model in tiles.

A model declares `spatial_radius`, how many input pixels away an output pixel still sees (its
receptive radius), and `spatial_align`, the pixel grid its tiles must start on (its patch or
pixel-unshuffle size). Each tile is processed with a margin of at least that radius around the part
kept from it, so every kept output pixel sees exactly the input it sees in a whole-frame pass: the
tiled output equals the untiled one up to float rounding. The zero padding of a tile's convolutions
falls inside the discarded margin; at the frame's own border a tile ends where the frame does, so
the border keeps the model's own handling.

`tile` is the side of the processed window, margins included (what bounds memory), in the
model's input pixels: LR for the strong model, HR for the light model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

import torch

from pipeline.errors import PssrError

Out = TypeVar("Out")  # what a tiled run returns: float frames, or pixels

log = logging.getLogger(__name__)

# Smallest kept part of a tile, in input pixels, when the stage shrinks tiles after out-of-memory
# errors: below it the margins would cost many times the work they surround.
_MIN_KEPT = 16


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels: [lo, hi) is processed, [keep_lo, keep_hi) kept."""

    lo: int
    hi: int
    keep_lo: int
    keep_hi: int


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def min_tile(radius: int, align: int = 1) -> int:
    """The smallest tile worth processing: margins on both sides around _MIN_KEPT kept pixels."""
    return 2 * _round_up(radius, align) + _round_up(_MIN_KEPT, align)


class TileError(PssrError, ValueError):
    """A configured tile too small for the model it tiles."""


def check_tile(tile: int | None, radius: int, align: int = 1, what: str = "tile") -> None:
    """Refuse a tile below `min_tile` for a model of this receptive radius and alignment."""
    minimum = min_tile(radius, align)
    if tile is not None and tile < minimum:
        raise TileError(
            f"{what} {tile} is below {minimum} px, the smallest for this model "
            f"(receptive radius {radius} px on each side, aligned to {align})"
        )


def spans(size: int, tile: int, radius: int, align: int = 1) -> list[Span]:
    """Cut [0, size) into windows of at most `tile` pixels whose kept parts partition it.

    Every kept part has at least `radius` processed pixels on each side inside the frame, and
    every window starts on a multiple of `align`.
    """
    if tile >= size:
        return [Span(0, size, 0, size)]
    halo = _round_up(radius, align)
    step = (tile - 2 * halo) // align * align
    if step < align:
        raise ValueError(f"tile {tile} is too small for a receptive radius of {radius} px (aligned to {align})")
    # The first window needs no margin on its frame side, so it keeps `halo` more than the others.
    bounds = [0, *range(step + halo, size, step)]
    if bounds[-1] >= size - halo and len(bounds) > 1:  # a last window of margin only: merge it into the one before
        bounds.pop()
    bounds.append(size)
    return [Span(max(0, a - halo), min(size, b + halo), a, b) for a, b in pairwise(bounds)]


def tiled(
    fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    tile: int | None,
    radius: int,
    align: int = 1,
    *aux: torch.Tensor,
) -> torch.Tensor:
    """`fn` over (..., H, W) input `x` in overlapping tiles of at most `tile` pixels a side; `fn`
    maps (..., h, w) to (..., h*s, w*s) for a whole scale s. `aux` tensors of the same H, W (the
    strong model's flow, computed on whole frames) are cut into the same tiles and passed after
    `x`. `tile` None, or as big as the frame: one call on the whole frame."""
    height, width = x.shape[-2:]
    if tile is None or tile >= max(height, width):
        return fn(x, *aux)
    out: torch.Tensor | None = None
    s = 0
    for row in spans(height, tile, radius, align):
        for col in spans(width, tile, radius, align):
            window = (..., slice(row.lo, row.hi), slice(col.lo, col.hi))
            part = fn(x[window], *(a[window] for a in aux))
            if out is None:
                s = part.shape[-1] // (col.hi - col.lo)
                out = part.new_empty((*part.shape[:-2], height * s, width * s))
            out[..., row.keep_lo * s : row.keep_hi * s, col.keep_lo * s : col.keep_hi * s] = part[
                ...,
                (row.keep_lo - row.lo) * s : (row.keep_hi - row.lo) * s,
                (col.keep_lo - col.lo) * s : (col.keep_hi - col.lo) * s,
            ]
    assert out is not None  # spans() always yields a tile
    return out


class AdaptiveTile:
    """A stage's tile size: the configured one (None: whole frames) until the device runs out of
    memory, then halved per error, starting from the whole frame, down to `min_tile`. The tile that
    worked is kept for the later segments of the actor."""

    def __init__(self, tile: int | None, radius: int, align: int, device: torch.device) -> None:
        check_tile(tile, radius, align)
        self.minimum = min_tile(radius, align)
        self.tile = tile
        self.device = device

    def run(self, work: Callable[[int | None], Out], frame_size: tuple[int, int]) -> Out:
        """`work(tile)`, retried with half the tile after each torch.OutOfMemoryError."""
        while True:
            try:
                return work(self.tile)
            except torch.OutOfMemoryError:
                smaller = min(self.tile or max(frame_size), max(frame_size)) // 2
                if smaller < self.minimum:
                    raise
            # Retried outside the except block: the failed attempt's tensors, held by the
            # traceback until then, are free now and the cache can give their memory back.
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning(
                "out of %s memory on %dx%d frames: tile %s -> %d px",
                self.device,
                *frame_size[::-1],
                self.tile or "whole frame",
                smaller,
            )
            self.tile = smaller
