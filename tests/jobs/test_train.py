"""Training: the loss falls on tiny data, a resumed run equals an uninterrupted one, and the
command line refuses bad data and settings before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import jobs.train
from jobs.cli import cli
from jobs.train import Trainer, train
from pipeline.models.weights import sha256_bytes
from pipeline.training.spec import TrainSpec
from tests.pipeline.training.conftest import textured_image, write_image


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_image(folder / f"p{i}.png", textured_image(200, 260, seed=i))
    return folder


def _spec(photos: Path, out: Path, **kw: object) -> TrainSpec:
    base: dict[str, object] = {
        "data": [str(photos)],
        "out": str(out),
        "scale": 2,
        "frames": 3,
        "batch": 4,
        "patch": 12,
    }
    base |= {
        "strong_steps": 40,
        "light_steps": 6,
        "warmup_steps": 5,
        "lr": 3e-3,
        "eval_every": 1000,
    }
    base |= {"checkpoint_every": 3, "threads": 2, "realistic_fraction": 0.25}
    return TrainSpec.model_validate({**base, **kw})


def test_training_beats_bicubic_on_its_data_and_writes_weights(photos: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    strong, light = train(_spec(photos, tmp_path / "run"), echo=lines.append)
    # Both models start as exact bicubic / identity, so any gain is learnt.
    assert strong.eval_psnr > strong.eval_bicubic_psnr + 0.02
    assert light.eval_psnr > strong.eval_bicubic_psnr
    for result in (strong, light):
        assert result.weights.is_file()
        assert sha256_bytes(result.weights.read_bytes()) == result.sha256
        assert result.sha256 in "\n".join(lines)
    assert (tmp_path / "run" / "training.json").is_file()


def test_a_resumed_run_equals_an_uninterrupted_one(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(photos, tmp_path / "whole", strong_steps=6, stages=["strong"])
    (full,) = Trainer(spec, echo=lambda _: None).run()

    # The same run killed right after its step-3 checkpoint, then started again.
    cut = spec.model_copy(update={"out": str(tmp_path / "cut")})
    real_save = jobs.train._save_checkpoint

    def save_then_die(
        path: Path,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        step: int,
        s: TrainSpec,
    ) -> None:
        real_save(path, model, opt, step, s)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(jobs.train, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cut, echo=lambda _: None).run()
    monkeypatch.undo()
    lines: list[str] = []
    (resumed,) = Trainer(cut, echo=lines.append).run()
    assert any("resuming at step 3" in line for line in lines)
    assert resumed.sha256 == full.sha256  # bit-identical weights


def test_checkpoints_are_safetensors_with_optimizer_state(photos: Path, tmp_path: Path) -> None:
    Trainer(_spec(photos, tmp_path, strong_steps=3, stages=["strong"]), echo=lambda _: None).run()
    tensors = load_file(str(tmp_path / "checkpoints" / "strong_tiny_x2.safetensors"))
    assert any(k.startswith("model.") for k in tensors)
    assert any(k.endswith("exp_avg_sq") for k in tensors)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())


def test_cli_refuses_bad_settings_and_empty_data(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["train", str(photos), "--out", str(tmp_path), "--stages", "light,strong"])
    assert bad.exit_code == 2 and "stages run strong then light" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(cli, ["train", str(empty), "--out", str(tmp_path / "o")])
    assert none.exit_code == 2 and "no images or videos" in none.output
