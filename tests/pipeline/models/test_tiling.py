"""Spatial tiling: the tiled output equals the whole-frame output, for every model, at odd frame
sizes and tiles that do not divide them; the out-of-memory fallback shrinks the tile."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from torch import nn

from pipeline.models import BicubicSR, IdentitySR, LanczosSR, LightSR, StrongSR, get_spec, load_model
from pipeline.models.inference import run_light, run_strong
from pipeline.models.tiling import AdaptiveTile, min_tile, spans, tiled
from tests.clips import photo_clip
from tests.oom import PixelBudget

TOLERANCE = 1e-5  # float rounding only: the kept pixels see exactly what they see in a whole frame


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """`model` with PyTorch's default random initialisation in every layer, the ones an honest start
    zeroes included (they would hide a too-small radius)."""
    torch.manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            layer.reset_parameters()
    return model.eval()


@pytest.mark.parametrize(
    ("size", "tile", "radius", "align"),
    [(37, 26, 8, 1), (100, 40, 11, 2), (101, 40, 11, 2), (29, 40, 8, 1), (64, 30, 12, 4), (97, 33, 3, 3)],
)
def test_spans_partition_the_frame_with_margins(size: int, tile: int, radius: int, align: int) -> None:
    cut = spans(size, tile, radius, align)
    assert cut[0].keep_lo == 0 and cut[-1].keep_hi == size
    assert all(a.keep_hi == b.keep_lo for a, b in pairwise(cut))
    for s in cut:
        assert s.hi - s.lo <= tile and s.lo % align == 0
        assert s.lo == 0 or s.keep_lo - s.lo >= radius
        assert s.hi == size or s.hi - s.keep_hi >= radius
    assert (len(cut) > 1) == (tile < size)


def test_a_tile_without_room_inside_its_margins_is_refused() -> None:
    with pytest.raises(ValueError, match="too small for a receptive radius of 8"):
        spans(100, 16, 8)
    assert min_tile(8) == 32 and min_tile(11, 2) == 40


def strong_models() -> list[tuple[str, nn.Module]]:
    """The shipped tiny weights at x2 and x4, the tiny architecture with random weights at x3
    (every layer non-zero), a small model with a small flow clamp and a patch-2 one with a 3 x 3
    neighbourhood, the classical ones."""

    def small(**arch: object) -> StrongSR:
        return randomised(StrongSR(3, **{"dim": 16, "n_blocks": 2, "heads": 2, "window": 1, **arch}))

    return [
        *((f"tiny-x{s}", load_model("strong", "tiny", s)[0]) for s in (2, 4)),
        ("tiny-random-x3", randomised(get_spec("strong", "tiny").build(3))),
        ("random-flow3-x3", small(max_flow=3)),
        ("patch2-neighbourhood3-x3", small(patch=2, neighbourhood=3, max_flow=4)),
        ("bicubic-x3", BicubicSR(3)),
        ("lanczos-x3", LanczosSR(3)),
    ]


@pytest.mark.parametrize(("name", "model"), strong_models(), ids=[n for n, _ in strong_models()])
def test_tiled_strong_equals_whole_frames(name: str, model: nn.Module) -> None:
    tile = min_tile(model.spatial_radius, model.spatial_align) + 3
    size = (tile + 7, tile + 20)  # frames the tiles divide unevenly (the flow's reach makes them large)
    lr = photo_clip(4, size, max_side=2 * max(size))
    assert len(spans(size[0], tile, model.spatial_radius, model.spatial_align)) > 1
    assert len(spans(size[1], tile, model.spatial_radius, model.spatial_align)) > 1
    radius = model.temporal_radius
    whole = run_strong(model, lr, slice(1, 3), radius, 2)
    tiled_out = run_strong(model, lr, slice(1, 3), radius, 2, tile=tile)
    assert tiled_out.shape == whole.shape
    assert (tiled_out - whole).abs().max().item() < TOLERANCE


def light_models() -> list[tuple[str, nn.Module]]:
    return [
        *((f"tiny-x{s}", load_model("light", "tiny", s)[0]) for s in (2, 4)),
        ("tiny-random-x3", randomised(get_spec("light", "tiny").build(3))),
        *((f"random-r{r}", randomised(LightSR(16, 2, unshuffle=r))) for r in (1, 3)),
        ("none", IdentitySR()),
    ]


@pytest.mark.parametrize(("name", "model"), light_models(), ids=[n for n, _ in light_models()])
def test_tiled_light_equals_whole_frames(name: str, model: nn.Module) -> None:
    hr = photo_clip(3, (61, 83))
    tile = min_tile(model.spatial_radius, model.spatial_align) + 5
    whole = run_light(model, hr, 2)
    tiled_out = run_light(model, hr, 2, tile=tile)
    assert (tiled_out - whole).abs().max().item() < TOLERANCE


@pytest.mark.parametrize(
    "model",
    [
        randomised(StrongSR(2, dim=8, n_blocks=2, heads=2, window=0)),
        randomised(StrongSR(3, dim=8, n_blocks=1, heads=2, window=0, patch=3)),
        randomised(StrongSR(2, dim=8, n_blocks=2, heads=2, window=1, neighbourhood=3, max_flow=2)),
        randomised(LightSR(8, 1, unshuffle=2)),
    ],
)
def test_an_output_pixel_sees_no_further_than_the_declared_radius(model: nn.Module) -> None:
    """A one-pixel change at the centre moves only output pixels within spatial_radius input pixels
    of it, the flow held as the whole frame's (as run_strong hands it to every tile)."""
    strong = isinstance(model, StrongSR)
    x = photo_clip(3, (41, 41))
    y = x.clone()
    y[1, :, 20, 20] += 0.5
    with torch.no_grad():
        if strong:
            motion = model.motion(x.unsqueeze(0))
            # A flow that crosses the centre at the clamp: the reach of the warp is exercised.
            motion[:, :, :, 16:25, 16:25] = model.max_flow
            a, b = (model(t.unsqueeze(0), None, motion)[0] for t in (x, y))
        else:
            a, b = model(x), model(y)
    scale = a.shape[-1] // 41
    changed = (a - b).abs().amax(dim=(0, 1)) > 0
    rows, cols = changed.nonzero(as_tuple=True)
    reach = max((rows // scale - 20).abs().max().item(), (cols // scale - 20).abs().max().item())
    assert 0 < reach <= model.spatial_radius


def test_out_of_memory_halves_the_tile_until_it_fits_and_keeps_it() -> None:
    model = load_model("light", "tiny", 2)[0]
    hr = photo_clip(2, (64, 256))
    budget = PixelBudget(model, 64 * 64)
    adaptive = AdaptiveTile(None, model.spatial_radius, model.spatial_align, torch.device("cpu"))

    def work(tile: int | None) -> torch.Tensor:
        return run_light(budget, hr, 2, tile)

    out = adaptive.run(work, (64, 256))
    # From the whole frame: 256 px (refused), 128 px tiles (64 x 128, refused), 64 px tiles (fit).
    assert (adaptive.tile, budget.refused) == (64, 2)
    assert (out - run_light(model, hr, 2)).abs().max().item() < TOLERANCE
    adaptive.run(work, (64, 256))  # the next segment starts from the tile that worked
    assert budget.refused == 2


def test_out_of_memory_below_the_smallest_tile_is_raised() -> None:
    model = load_model("light", "tiny", 2)[0]
    adaptive = AdaptiveTile(None, model.spatial_radius, model.spatial_align, torch.device("cpu"))
    budget = PixelBudget(model, 10)
    with pytest.raises(torch.OutOfMemoryError):
        adaptive.run(lambda tile: run_light(budget, photo_clip(2, (64, 96)), 2, tile), (64, 96))
    assert adaptive.tile is not None and adaptive.tile >= adaptive.minimum


def test_a_configured_tile_below_the_models_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="tile 20 is below 32 px"):
        AdaptiveTile(20, 8, 1, torch.device("cpu"))


def test_tiled_passes_whole_frames_through_when_they_fit() -> None:
    calls = []
    x = torch.rand(1, 3, 20, 30)
    tiled(lambda part: calls.append(part.shape) or part, x, 30, 4)
    assert calls == [x.shape]
