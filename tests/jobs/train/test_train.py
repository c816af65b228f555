"""Training: the loss falls on tiny data, a resumed run equals an uninterrupted one, and the
command line refuses bad data and settings before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from jobs.cli.main import cli
from jobs.train import train as train_module
from jobs.train.train import Trainer, train
from pipeline.config import ConfigError
from pipeline.models.registry import get_spec
from pipeline.models.weights import WeightsError, serialize, sha256_bytes
from pipeline.training.spec import TrainSpec, load_train_spec
from tests.pipeline.training.conftest import textured_image, write_image


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_image(folder / f"p{i}.png", textured_image(200, 260, seed=i))
    return folder


def _spec(photos: Path, out: Path, **kw: object) -> TrainSpec:
    # 100 steps: enough for the strong model to pass bicubic with the temporal term on (40 were not).
    strong = {"steps": 100, "warmup_steps": 5, "lr": 3e-3, "realistic_fraction": 0.25}
    base: dict[str, object] = {"data": [str(photos)], "out": str(out), "scale": 2, "frames": 3, "batch": 4}
    base |= {"patch": 12, "strong": strong, "light": {"steps": 6, "warmup_steps": 2}, "eval_every": 1000}
    base |= {"checkpoint_every": 3, "threads": 2, "flow_margin": 4}
    # Gentle clips (slow pans, nothing else moving), so 100 steps show a gain.
    base |= {"motion": {"max_speed": 1.0, "object_probability": 0.0, "blur_probability": 0.0}}
    return TrainSpec.model_validate({**base, **kw})


@pytest.mark.slow  # a whole training run: 100 steps
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
    spec = _spec(photos, tmp_path / "whole", strong={"steps": 6, "warmup_steps": 5, "lr": 3e-3}, stages=["strong"])
    (full,) = Trainer(spec, echo=lambda _: None).run()

    # The same run killed right after its step-3 checkpoint, then started again.
    cut = spec.model_copy(update={"out": str(tmp_path / "cut")})
    real_save = train_module._save_checkpoint

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

    monkeypatch.setattr(train_module, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cut, echo=lambda _: None).run()
    monkeypatch.undo()
    lines: list[str] = []
    (resumed,) = Trainer(cut, echo=lines.append).run()
    assert any("resuming at step 3" in line for line in lines)
    assert resumed.sha256 == full.sha256  # bit-identical weights


def test_checkpoints_are_safetensors_with_optimizer_state(photos: Path, tmp_path: Path) -> None:
    Trainer(_spec(photos, tmp_path, strong={"steps": 3}, stages=["strong"]), echo=lambda _: None).run()
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


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[3] / "jobs" / "train" / "configs").glob("train-*.yaml")))
def test_shipped_training_configs_are_valid(config: Path) -> None:
    spec = load_train_spec(config, {"data": ["photos"]})
    assert f"x{spec.scale}" in config.name and spec.model in config.name


def test_cli_trains_with_flags_over_the_defaults(photos: Path, tmp_path: Path) -> None:
    args = ["train", str(photos), "--out", str(tmp_path), "--scale", "2", "--stages", "strong"]
    result = CliRunner().invoke(cli, [*args, "--strong-steps", "2", "--batch", "1", "--patch", "8"])
    assert result.exit_code == 0, result.output
    assert "step 2/2" in result.output and "sha256" in result.output
    assert (tmp_path / "strong_tiny_x2.safetensors").is_file()
    assert not (tmp_path / "light_tiny_x2.safetensors").exists()


def test_a_bad_training_setting_is_named() -> None:
    with pytest.raises(ConfigError, match=r"invalid training configuration:\n  light.lr: "):
        load_train_spec(None, {"data": ["photos"], "light.lr": -1})


@pytest.mark.slow  # each recipe's full-size clips and both models
@pytest.mark.parametrize("config", sorted((Path(__file__).parents[3] / "jobs" / "train" / "configs").glob("train-*.yaml")))
def test_each_recipe_trains_a_few_steps(config: Path, tmp_path: Path) -> None:
    """The shipped recipes run as written (their patch, frames, flow margin, degradations), a few
    steps each, and write weights that the registry's architecture loads."""
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "p.png", textured_image(300, 420, seed=5))
    steps = {"strong.steps": 2, "strong.warmup_steps": 1, "light.steps": 2, "light.warmup_steps": 1}
    spec = load_train_spec(config, {"data": [str(photos)], "out": str(tmp_path / "out"), "batch": 2, **steps})
    results = Trainer(spec, echo=lambda _: None).run()
    assert [r.kind for r in results] == ["strong", "light"]
    for result in results:
        model = get_spec(result.kind, spec.model).build(spec.scale)
        model.load_state_dict(load_file(str(result.weights)), strict=True)


def test_a_stage_starts_from_weights_of_another_scale(photos: Path, tmp_path: Path) -> None:
    """`init`: the x4 file's tensors that fit the x2 model are loaded; the reconstruction (another
    shape at another scale) starts fresh; a file whose sha256 differs from `init_sha256` is refused."""
    x4 = get_spec("strong", "tiny").build(4)
    for p in x4.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = tmp_path / "x4.safetensors"
    path.write_bytes(serialize(get_spec("strong", "tiny"), 4, x4))
    lines: list[str] = []
    trainer = Trainer(_spec(photos, tmp_path / "run"), echo=lines.append)
    x2 = get_spec("strong", "tiny").build(2)
    trainer._start_from(x2, str(path), sha256_bytes(path.read_bytes()))
    for name, tensor in x2.state_dict().items():
        if name.startswith("recon."):
            assert not tensor.any()  # the honest start: zero
        else:
            assert torch.equal(tensor, x4.state_dict()[name]), name
    assert any("fresh: recon.bias, recon.weight" in line for line in lines)
    with pytest.raises(WeightsError, match="wrong sha256"):
        trainer._start_from(x2, str(path), "0" * 64)
