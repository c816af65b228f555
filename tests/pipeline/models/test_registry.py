"""Registry behaviour, the named sizes' parameter counts and the tiny pair's compute cost."""

from __future__ import annotations

import re

import pytest
import torch

from pipeline.models.registry import MODELS, SCALES, ModelSpec, Registry, get_spec, register


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build_meta(kind: str, name: str, scale: int = 4) -> torch.nn.Module:
    with torch.device("meta"):  # shapes only: a 420M model costs no memory
        return get_spec(kind, name).build(scale)


def test_registry_refuses_duplicates_and_lists_known_names() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    reg.register("b", 2)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a", 3)
    with pytest.raises(KeyError, match="unknown thing 'c'; known: a, b"):
        reg.get("c")
    assert reg.get("b") == 2 and "a" in reg and list(reg) == ["a", "b"]


def test_global_registry_refuses_a_second_tiny() -> None:
    with pytest.raises(KeyError, match="already registered"):
        register(ModelSpec("strong", "tiny", {}))
    with pytest.raises(KeyError, match="known: base, large, none, tiny"):
        get_spec("light", "huge")


@pytest.mark.parametrize(
    ("kind", "name", "low", "high"),
    [
        ("strong", "large", 420e6 * 0.95, 420e6 * 1.05),
        ("light", "large", 8e6 * 0.95, 8e6 * 1.05),
        ("strong", "base", 20e6, 40e6),
        ("light", "base", 0.8e6, 1.2e6),
    ],
)
def test_param_counts(kind: str, name: str, low: float, high: float) -> None:
    for scale in SCALES:
        assert low <= _params(_build_meta(kind, name, scale)) <= high


def test_every_size_has_weights_for_every_scale() -> None:
    for kind, reg in MODELS.items():
        for name in reg:
            spec = reg.get(name)
            if not spec.needs_weights:  # classical methods (tests/pipeline/models/test_classical.py)
                continue
            assert sorted(spec.weights) == list(SCALES)
            for scale, entry in spec.weights.items():
                assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
                assert entry.filename == f"{kind}_{name}_x{scale}.safetensors"
                assert entry.bundled == (name == "tiny")


def test_temporal_radius_of_sizes() -> None:
    assert _build_meta("strong", "tiny").temporal_radius == 3


def test_unsupported_scale() -> None:
    with pytest.raises(ValueError, match="scale 5"):
        get_spec("strong", "tiny").build(5)
