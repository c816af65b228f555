"""The pools' fast paths through the stage callables, each against the plain path: precision,
tiles and the out-of-memory fallback, several segments per batch, torch.compile."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from actors.light import LightStage
from actors.rows import records_from_batch, records_to_batch
from actors.strong import StrongStage
from pipeline.config import PoolSpec
from pipeline.models.tiling import min_tile
from pipeline.models.weights import model_info
from pipeline.segment import SegmentRecord
from tests.actors.segments import decoded
from tests.clips import make_clip
from tests.oom import PixelBudget

# Raised from inside torch's inductor, not from this code.
INDUCTOR_WARNING = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("fast") / "c.mp4", frames=16, size=(96, 64))


def strong_min_tile(scale: int = 2) -> int:
    info = model_info("strong", "tiny", scale)
    return min_tile(info.spatial_radius, info.spatial_align)


# A strong tile well above the smallest (whose kept part is a few pixels: many tiles, slow).
STRONG_TILE = strong_min_tile() + 78


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory) -> Path:
    """LR frames two strong tiles wide and lower than one: the strong model's flow reach makes its
    tiles wide, and low frames keep the test fast."""
    return make_clip(tmp_path_factory.mktemp("wide") / "w.mp4", frames=16, size=(2 * STRONG_TILE, 64))


def both_stages(clip: Path, strong: PoolSpec, light: PoolSpec, scale: int = 2) -> SegmentRecord:
    row = decoded(clip)
    StrongStage("tiny", scale, "cpu", strong, None, None).process(row)
    LightStage("tiny", scale, "cpu", light, None, None).process(row)
    return row


def test_bf16_through_the_stages_stays_within_its_tolerance(clip: Path) -> None:
    """As tests/pipeline/models/test_precision.py, on decoded 8-bit frames: bf16 moves pixels by a level or
    two (its tolerance: mean 0.5, max 4 levels), and the metrics barely."""
    plain = both_stages(clip, PoolSpec(), PoolSpec())
    fast = both_stages(clip, PoolSpec(precision="bf16"), PoolSpec(precision="bf16"))
    assert fast.status == "ok" and fast.hr.shape == plain.hr.shape
    levels = np.abs(fast.hr.astype(int) - plain.hr.astype(int))
    assert levels.mean() < 0.5 and levels.max() <= 4 and levels.max() > 0
    assert fast.lr_psnr == pytest.approx(plain.lr_psnr, abs=0.2)


def test_out_of_memory_in_the_strong_stage_gives_the_whole_frame_output(wide_clip: Path) -> None:
    pool = PoolSpec()
    plain = decoded(wide_clip)
    StrongStage("tiny", 2, "cpu", pool, None, None).process(plain)
    stage = StrongStage("tiny", 2, "cpu", pool, None, None)
    stage.model = budget = PixelBudget(stage.model, STRONG_TILE * 64)  # whole frames do not fit; half-width tiles do
    row = decoded(wide_clip)
    stage.process(row)
    assert row.status == "ok" and budget.refused == 1 and stage.tile.tile == STRONG_TILE
    # The same pixels up to float rounding, which moves a value across a rounding edge by one level:
    # rarely, though more often than convolutions alone do, since the flow's warp samples at
    # coordinates computed from each tile's own extent.
    levels = np.abs(row.hr.astype(int) - plain.hr.astype(int))
    assert levels.max() <= 1 and (levels == 0).mean() > 0.99
    stage.process(row := decoded(wide_clip))  # the next segment starts from the tile that worked
    assert row.status == "ok" and budget.refused == 1


def test_out_of_memory_below_the_smallest_tile_fails_the_segment_only(clip: Path) -> None:
    stage = LightStage("tiny", 2, "cpu", PoolSpec(), None, None)
    row = decoded(clip)
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(row)
    stage.model = PixelBudget(stage.model, 100)
    batch = stage(records_to_batch([row]))
    (out,) = records_from_batch(batch)
    assert out.status == "failed" and "OutOfMemoryError" in out.error


def test_a_configured_tile_gives_the_whole_frame_output(wide_clip: Path) -> None:
    plain = both_stages(wide_clip, PoolSpec(), PoolSpec())
    # Strong tiles across the LR frames, 56 px light tiles over the HR frames both ways.
    tiled = both_stages(wide_clip, PoolSpec(tile=STRONG_TILE), PoolSpec(tile=56))
    levels = np.abs(tiled.hr.astype(int) - plain.hr.astype(int))
    assert levels.max() <= 1 and (levels == 0).mean() > 0.99  # float rounding, as above


def test_a_tile_below_the_models_margins_fails_at_actor_start() -> None:
    minimum = strong_min_tile()
    with pytest.raises(ValueError, match=f"tile {minimum - 1} is below {minimum} px"):
        StrongStage("tiny", 2, "cpu", PoolSpec(tile=minimum - 1), None, None)


@pytest.mark.parametrize("stage_class", [StrongStage, LightStage])
def test_two_segments_per_batch_give_what_one_per_batch_gives(clip: Path, stage_class: type) -> None:
    """batch_size 2: Ray Data hands the stage a batch of two rows (frames of different lengths
    and positions); each comes out as it does alone."""

    def rows() -> list[SegmentRecord]:
        first, second = decoded(clip, (0, 10), (3, 7)), decoded(clip, (4, 16), (7, 16))
        if stage_class is LightStage:
            strong = StrongStage("tiny", 2, "cpu", PoolSpec(), None, None)
            for row in (first, second):
                strong.process(row)
        return [first, second]

    stage = stage_class("tiny", 2, "cpu", PoolSpec(batch_size=2), None, None)
    together = records_from_batch(stage(records_to_batch(rows())))
    alone = [records_from_batch(stage(records_to_batch([row])))[0] for row in rows()]
    assert len(together) == 2
    for a, b in zip(together, alone, strict=True):
        assert a.status == b.status == "ok"
        assert np.array_equal(a.hr, b.hr) and a.segment_index == b.segment_index
        if stage_class is LightStage:
            assert a.lr_psnr == b.lr_psnr and a.tfs == b.tfs


@INDUCTOR_WARNING
def test_compiled_light_model_gives_the_plain_output(clip: Path) -> None:
    """torch.compile (inductor, CPU here): the same pixels up to float rounding. ~30 s of compilation."""
    row = decoded(clip)
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(row)
    plain, compiled = dataclasses.replace(row), dataclasses.replace(row)
    LightStage("tiny", 2, "cpu", PoolSpec(), None, None).process(plain)
    LightStage("tiny", 2, "cpu", PoolSpec(compile=True), None, None).process(compiled)
    assert compiled.status == "ok"
    levels = np.abs(compiled.hr.astype(int) - plain.hr.astype(int))
    assert levels.max() <= 1 and (levels == 0).mean() > 0.999


@INDUCTOR_WARNING
@pytest.mark.skipif(
    os.environ.get("PSSR_TEST_COMPILE") != "1", reason="compiles the strong model (over a minute); PSSR_TEST_COMPILE=1"
)
def test_compiled_strong_model_gives_the_plain_output(clip: Path) -> None:
    plain, compiled = decoded(clip), decoded(clip)
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(plain)
    stage = StrongStage("tiny", 2, "cpu", PoolSpec(compile=True), None, None)
    stage.process(compiled)
    levels = np.abs(compiled.hr.astype(int) - plain.hr.astype(int))
    assert compiled.status == "ok" and levels.max() <= 1 and (levels == 0).mean() > 0.999
    stage.process(other := decoded(clip, (4, 16), (7, 16)))  # another length: recompiled, still right
    StrongStage("tiny", 2, "cpu", PoolSpec(), None, None).process(expected := decoded(clip, (4, 16), (7, 16)))
    assert np.abs(other.hr.astype(int) - expected.hr.astype(int)).max() <= 1
