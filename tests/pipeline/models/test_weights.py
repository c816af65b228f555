"""Verified loading: bundled tiny weights, sha256 checks, weights_dir lookup, model_info."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from pipeline.models import registry
from pipeline.models.registry import SCALES, ModelSpec, Registry, WeightFile, get_spec
from pipeline.models.strong import bicubic_upscale
from pipeline.models.weights import (
    BUNDLED_DIR,
    WeightsError,
    load_model,
    model_info,
    serialize,
    weights_sha256,
)


@pytest.mark.parametrize("scale", SCALES)
def test_bundled_tiny_pair_loads_verified_and_untrained_files_are_exactly_bicubic(scale: int) -> None:
    strong, strong_sha = load_model("strong", "tiny", scale)
    light, light_sha = load_model("light", "tiny", scale)
    assert not strong.training and not light.training
    for kind, sha in (("strong", strong_sha), ("light", light_sha)):
        data = (BUNDLED_DIR / f"{kind}_tiny_x{scale}.safetensors").read_bytes()
        assert sha == hashlib.sha256(data).hexdigest() == weights_sha256(kind, "tiny", scale)
    torch.manual_seed(scale)
    lr = torch.rand(1, 3, 3, 12, 20)
    with torch.inference_mode():
        hr = strong(lr)[0]
        out = light(hr)
    # An honest start is bicubic exactly; trained weights must differ from it (their gain over
    # bicubic is checked in test_shipped_weights.py).
    bicubic = bicubic_upscale(lr[0], scale).clamp(0, 1)
    assert ((hr - bicubic).abs().max() <= 1e-6) == (not get_spec("strong", "tiny").weights[scale].trained)
    assert torch.equal(out, hr) == (not get_spec("light", "tiny").weights[scale].trained)


def test_tampered_file_in_weights_dir_is_rejected(tmp_path: Path) -> None:
    name = "strong_tiny_x4.safetensors"
    data = bytearray((BUNDLED_DIR / name).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    expected = weights_sha256("strong", "tiny", 4)
    with pytest.raises(WeightsError) as err:
        load_model("strong", "tiny", 4, weights_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / name) in message and expected in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message


def test_weights_dir_copy_of_bundled_file_loads(tmp_path: Path) -> None:
    shutil.copy(BUNDLED_DIR / "light_tiny_x2.safetensors", tmp_path)
    _, sha = load_model("light", "tiny", 2, weights_dir=tmp_path)
    assert sha == weights_sha256("light", "tiny", 2)


UNIT_ARCH = {"features": 4, "n_convs": 1}


def _install_unbundled(monkeypatch: pytest.MonkeyPatch, file_arch: dict[str, int]) -> bytes:
    """Register light size 'unit' (UNIT_ARCH, no bundled weights, like base/large) whose x4
    entry is the honest-start file of `file_arch`; returns that file's bytes."""
    torch.manual_seed(0)
    data = serialize(ModelSpec("light", "unit", file_arch), 4, ModelSpec("light", "unit", file_arch).build(4))
    entry = WeightFile("light_unit_x4.safetensors", hashlib.sha256(data).hexdigest(), bundled=False)
    reg: Registry[ModelSpec] = Registry("light model")
    reg.register("unit", ModelSpec("light", "unit", UNIT_ARCH, {4: entry}))
    monkeypatch.setitem(registry.MODELS, "light", reg)
    return data


def test_unbundled_size_needs_weights_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = _install_unbundled(monkeypatch, UNIT_ARCH)
    for weights_dir in (None, tmp_path):
        with pytest.raises(WeightsError, match="no weights are shipped for light model 'unit'.*light_unit_x4"):
            load_model("light", "unit", 4, weights_dir=weights_dir)
    (tmp_path / "light_unit_x4.safetensors").write_bytes(data)
    _, sha = load_model("light", "unit", 4, weights_dir=str(tmp_path))
    assert sha == hashlib.sha256(data).hexdigest()
    assert model_info("light", "unit", 4, tmp_path).path == tmp_path / "light_unit_x4.safetensors"


def test_file_of_another_architecture_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "light_unit_x4.safetensors").write_bytes(_install_unbundled(monkeypatch, {"features": 5, "n_convs": 1}))
    with pytest.raises(WeightsError, match="does not fit light model 'unit' x4"):
        load_model("light", "unit", 4, weights_dir=tmp_path)


def test_unregistered_scale_and_unknown_name() -> None:
    with pytest.raises(WeightsError, match="x5"):
        weights_sha256("strong", "tiny", 5)
    with pytest.raises(KeyError, match="known: base, bicubic, lanczos, large, tiny"):
        load_model("strong", "medium", 4)


def test_model_info_without_loading() -> None:
    strong = model_info("strong", "tiny", 4)
    light = model_info("light", "tiny", 4)
    assert strong.temporal_radius == 3 and light.temporal_radius == 0
    assert strong.sha256 == weights_sha256("strong", "tiny", 4)
    assert strong.path == BUNDLED_DIR / "strong_tiny_x4.safetensors"
    with pytest.raises(WeightsError, match="make_initial_weights --sizes large"):
        model_info("strong", "large", 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    lr = torch.rand(1, 5, 3, 24, 32)
    outputs = []
    for device in ("cpu", "cuda"):
        strong, _ = load_model("strong", "tiny", 4, device=device)
        light, _ = load_model("light", "tiny", 4, device=device)
        with torch.inference_mode():
            outputs.append(light(strong(lr.to(device))[0]).cpu())
    assert (outputs[0] - outputs[1]).abs().max() < 1e-4
