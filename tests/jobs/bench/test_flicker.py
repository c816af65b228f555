"""`pssr bench flicker` on small clips: bicubic and every stable output on a still clip score ~0,
detail popping scores above the true frames on `flicker`, the tables hold every output and pair,
and the same photos give the same figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jobs.bench.flicker import CHANGING, OUTPUTS, PAIRS, STABLE, Cases, bench_flicker, by_clip, score_clips
from jobs.cli.main import cli
from tests.pipeline.training.conftest import textured_image, write_image

FIXTURE = Path(__file__).parents[2] / "fixtures" / "by_the_water_crop.png"
NAMES = {"water": FIXTURE.name, "made": "made.png"}
SMALL = Cases(frames=4, width=96, height=64, moving=((4, 0.5), (2, 1.5)))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(FIXTURE, folder)
    write_image(folder / "made.png", textured_image(240, 400, seed=3))
    return folder


@pytest.fixture(scope="module")
def report(photos: Path) -> tuple[str, list[dict]]:
    out = photos.parent / "out"
    text = bench_flicker(photos, out, NAMES, SMALL, echo=lambda _: None)
    return text, pq.read_table(out / "flicker.parquet").to_pylist()


def test_every_clip_scores_every_output(report: tuple[str, list[dict]]) -> None:
    _, rows = report
    moving, still = by_clip(rows, True), by_clip(rows, False)
    assert len(moving) == 2 * len(SMALL.moving) and len(still) == 2
    assert all(list(clip) == list(OUTPUTS) for clip in [*moving.values(), *still.values()])


def test_bicubic_is_near_zero_and_popping_detail_above_the_true_frames(report: tuple[str, list[dict]]) -> None:
    _, rows = report
    for clip in by_clip(rows, True).values():
        # Bicubic differs from the metrics' own upscaling only where clamping cuts its overshoot.
        assert clip["bicubic"]["tfs"] < 0.05 and clip["bicubic"]["flicker"] < clip["hr"]["flicker"] / 10
        assert clip["popping"]["flicker"] > clip["hr"]["flicker"]
    for clip in by_clip(rows, False).values():  # nothing moves: stable outputs do not change at all
        assert all(clip[k]["tfs"] == 0 and clip[k]["flicker"] < 1e-9 for k in STABLE)
        assert all(clip[k]["tfs"] > 0.1 and clip[k]["flicker"] > 1e-6 for k in CHANGING)


def test_the_tables_hold_every_output_and_pair(report: tuple[str, list[dict]]) -> None:
    text, _ = report
    outputs, pairs, findings = text.split("\n\n")
    assert [line.split(" | ")[0][2:] for line in outputs.splitlines()[2:]] == list(OUTPUTS.values())
    assert [line.split(" | ")[0][2:] for line in pairs.splitlines()[2:]] == [label for _, _, label in PAIRS]
    popping = next(line for line in pairs.splitlines() if line.startswith("| detail popping"))
    assert popping.endswith(", 4/4 |")  # flicker ranks it worse than the true frames in every clip
    assert findings.count("/4 clips") == 2 and "(water)" in findings and "(made)" in findings


def test_the_same_photos_give_the_same_figures(photos: Path) -> None:
    one = Cases(frames=3, width=64, height=48, moving=((4, 1.0),))
    assert score_clips(photos, {"w": FIXTURE.name}, one, None) == score_clips(photos, {"w": FIXTURE.name}, one, None)


def test_the_command_says_how_to_fetch_missing_photos(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "flicker", "--photos", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "python -m jobs.train.photos natural" in result.output
