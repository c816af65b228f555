"""`pssr bench quality`: the CLI's methods, tracks and defaults, the model-only speed test, and an
end-to-end run on a tiny set whose bicubic PSNR matches a direct computation."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from jobs.bench import benchset
from jobs.bench.quality import METHODS, METRICS, model_speed
from jobs.cli import bench as bench_cli
from jobs.cli.main import cli
from pipeline.media.decode import decode_frames
from pipeline.media.probe import probe_video
from pipeline.models.classical import BicubicSR
from pipeline.models.weights import find_weights, weight_file
from pipeline.quality import metrics
from tests.pipeline.training.conftest import textured_image, write_image


def test_the_cli_offers_the_benchmarks_own_methods_tracks_and_defaults() -> None:
    assert bench_cli.SET_DEFAULTS == asdict(benchset.BenchSet())  # the help texts' copy
    params = {p.name: p for p in bench_cli.quality.params}
    assert params["methods"].type.choices == METHODS and params["tracks"].type.choices == benchset.TRACKS


def test_the_set_takes_its_scale_from_the_command_line(tmp_path: Path) -> None:
    """--scale reaches the set as a number: x3 needs an HR size divisible by 3, and says so."""
    args = ["bench", "quality", "--photos", str(tmp_path), "--out", str(tmp_path / "o"), "--scale", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "HR size 640x360 is not a multiple of the scale 3" in result.output


def test_model_speed_rows() -> None:
    rows = model_speed("tiny", "tiny", 4, frames=2, rounds=1, hr=(32, 48))
    assert [r["model"] for r in rows] == ["tiny+tiny", "SRVGGNetCompact"]
    assert rows[1]["params"] == 621_424 and rows[1]["relative_to_srvgg"] == 1.0
    for r in rows:
        assert (r["lr_width"], r["lr_height"], r["hr_width"], r["hr_height"]) == (12, 8, 48, 32)
        assert r["frames"] == 2 and r["fps"] > 0 and r["threads"] >= 1


def _frames(path: Path) -> torch.Tensor:
    """A whole video as the pipeline decodes it, (T, 3, H, W) float in [0, 1]."""
    frames = decode_frames(path, 0, probe_video(path, detect_scenes=False).n_frames).frames
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_bench_quality_end_to_end(tmp_path: Path) -> None:
    # Own weights from a job file (copies of the bundled ones): the learned methods use them, the
    # classical ones take none.
    weights = tmp_path / "weights"
    weights.mkdir()
    own = {kind: weight_file(kind, "tiny", 4) for kind in ("strong", "light")}
    for kind, entry in own.items():
        shutil.copy(find_weights(kind, "tiny", 4), weights / entry.filename)
    config = tmp_path / "job.yaml"
    config.write_text(
        f"models: {{weights_dir: {weights}, strong_sha256: {own['strong'].sha256}, "
        f"light_sha256: {own['light'].sha256}}}\n"
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        write_image(photos / f"p{i}.png", textured_image(160, 240, seed=i))
    out = tmp_path / "bench"
    args = ["bench", "quality", "--photos", str(photos), "--out", str(out), "--videos", "1", "--scenes", "2"]
    args += ["--frames", "8", "--width", "128", "--height", "72", "--track", "bi", "--no-speed", "--no-motion"]
    args += ["--method", "bicubic", "--method", "strong+light", "--config", str(config)]

    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 0, result.output
    assert "| track | method | strong + light | PSNR dB | SSIM | ewarp | flicker | tfs | lr_psnr dB | fps |" in result.output
    assert "| bi | bicubic | bicubic + none |" in result.output
    assert "| bi | strong+light | tiny + tiny |" in result.output
    table = pq.read_table(out / "quality.parquet")
    expected = {"track", "method", "strong_model", "light_model", "strong_sha256", "light_sha256", "scale"}
    expected |= {"frames", "seconds", "fps", "scenes", *METRICS}
    assert expected <= set(table.column_names)
    rows = {r["method"]: r for r in table.to_pylist()}
    assert set(rows) == {"bicubic", "strong+light"}
    assert rows["bicubic"]["strong_sha256"] is None
    assert (rows["strong+light"]["strong_sha256"], rows["strong+light"]["light_sha256"]) == (
        own["strong"].sha256,
        own["light"].sha256,
    )
    for row in rows.values():
        assert (row["frames"], row["scenes"], row["scale"]) == (16, 2, 4)
        assert all(row[m] is not None for m in METRICS) and row["fps"] > 0

    # Bicubic PSNR straight from the set's files, per scene (one segment each), frame-weighted.
    lr = _frames(out / "set" / "bi" / "video00.mkv")
    hr = _frames(out / "set" / "hr" / "video00.mkv")
    up = BicubicSR(4)(lr.unsqueeze(0))[0]
    direct = sum(metrics.psnr(u, h) for u, h in zip(up.split(8), hr.split(8))) / 2
    assert abs(rows["bicubic"]["psnr"] - direct) < 0.05
