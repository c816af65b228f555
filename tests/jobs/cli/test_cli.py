"""The `pssr` CLI: help, config errors before any work, bad inputs, the plan command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli.main import cli
from pipeline.manifest.files import read_manifests
from pipeline.storage import Storage
from tests.clips import make_clip, make_corrupt


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_every_command_and_option():
    top = invoke("--help")
    assert top.exit_code == 0 and "run" in top.output and "plan" in top.output
    run_help = invoke("run", "--help").output
    for option in (
        "--scale",
        "--segment-frames",
        "--context-frames",
        "--codec",
        "--crf",
        "--s3-endpoint-url",
        "--ray-address",
        "--limit",
        "--strong-actors",
        "--light-gpus",
        "--config",
        "--max-width",
        "--max-height",
        "--max-duration",
        "--reference",
    ):
        assert option in run_help
    assert "segment.max_core_frames" in run_help  # each option names its JobSpec field
    assert "default: no limit. [limits.max_duration_s]" in " ".join(run_help.split())  # not "default: auto"


def test_invalid_config_fails_before_any_work_naming_the_field(tmp_path: Path):
    job = tmp_path / "job.yaml"
    job.write_text("segment:\n  max_core_frames: 0\n")
    result = CliRunner().invoke(cli, ["run", str(tmp_path), str(tmp_path / "out"), "--config", str(job)])
    assert result.exit_code == 2
    assert "segment.max_core_frames" in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["run", str(tmp_path), str(tmp_path / "out"), "--crf", "70"])
    assert result.exit_code == 2 and "encode.crf" in result.output


def test_missing_weights_are_refused_with_a_message_not_a_traceback(tmp_path: Path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path), str(tmp_path / "out"), "--strong-model", "base"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: no weights are shipped for strong model 'base'")
    assert not (tmp_path / "out").exists()


def test_plan_prints_segments_without_running_models(tmp_path: Path):
    clip = make_clip(tmp_path / "a.mp4", frames=30, size=(64, 36), scene_cut_at=12)
    result = invoke("plan", str(clip), "--segment-frames", "10", "--context-frames", "2")
    assert result.exit_code == 0, result.output
    assert "30 frames" in result.output and "2 scene(s)" in result.output
    lines = [line.split() for line in result.output.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]
    # (scene, core range, context range) per segment: never across the cut at 12, context clipped there.
    assert [(s[1], s[2], s[3]) for s in lines] == [
        ("0", "0-5", "0-7"),
        ("0", "6-11", "4-11"),
        ("1", "12-20", "12-22"),
        ("1", "21-29", "19-29"),
    ]


@pytest.mark.slow
@pytest.mark.allow_error_logs
@pytest.mark.usefixtures("ray_cluster")
def test_corrupt_video_fails_alone_with_a_clear_error(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "good.mp4", frames=12, size=(64, 36), audio_streams=1)
    make_corrupt(src / "bad.mp4")
    out = tmp_path / "out"

    result = CliRunner().invoke(cli, ["run", str(src), str(out), "--scale", "2"])

    assert result.exit_code == 1
    assert "bad.mp4" in result.output
    assert (out / "good_x2.mp4").exists()
    assert not (out / "bad_x2.mp4").exists()
    videos, _ = read_manifests(Storage(), str(out))
    rows = {r["video_key"]: r for r in videos.to_pylist()}
    assert rows["good.mp4"]["status"] == "ok"
    assert rows["bad.mp4"]["status"] == "failed" and rows["bad.mp4"]["output_uri"] is None
    assert "Invalid data" in rows["bad.mp4"]["error"] or "cannot open" in rows["bad.mp4"]["error"]


def test_models_lists_every_size_with_its_parameters_radius_and_cost():
    import torch

    from pipeline.models import MODELS, get_spec
    from pipeline.models.cost import gmac_per_frame

    output = invoke("models", "--scale", "2").output
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in output.splitlines()[1:]}
    assert set(lines) == {(kind, name) for kind, registry in MODELS.items() for name in registry}
    for (kind, name), (params, radius, gmac, *where) in lines.items():
        with torch.device("meta"):
            model = get_spec(kind, name).build(2)
        assert int(params.replace(",", "")) == sum(p.numel() for p in model.parameters())
        assert int(radius) == getattr(model, "temporal_radius", 0)
        assert float(gmac) == pytest.approx(gmac_per_frame(kind, name, 2), abs=1e-3)
    state = "trained" if get_spec("strong", "tiny").weights[2].trained else "bicubic start"
    assert " ".join(lines[("strong", "tiny")][3:]) == f"bundled, {state}"
    assert lines[("strong", "large")][3:5] == ["weights_dir:", "strong_large_x2.safetensors"]


def test_a_tile_too_small_for_its_model_is_refused_before_any_work(tmp_path: Path):
    job = tmp_path / "job.yaml"
    job.write_text("light_pool:\n  tile: 16\n")  # the tiny light model needs 40 px (radius 11, aligned to 2)
    result = CliRunner().invoke(cli, ["run", str(tmp_path), str(tmp_path / "out"), "--config", str(job)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: light_pool.tile 16 is below ")
    assert not (tmp_path / "out").exists()
