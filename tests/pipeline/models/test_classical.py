"""Classical upscalers as registry entries: bicubic, Lanczos-3 and the identity light model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.classical import BicubicSR, IdentitySR, LanczosSR, lanczos_upscale
from pipeline.models.registry import MODELS, SCALES, get_spec
from pipeline.models.strong import bicubic_upscale
from pipeline.models.weights import WeightsError, load_model, model_info, weights_sha256


def lanczos3_reference(image: np.ndarray, scale: int) -> np.ndarray:
    """Direct, slow Lanczos-3 upscaling of a 2-D image: for each output pixel, the six input
    pixels around x = (i + 0.5) / s - 0.5 (indices clamped at the edges), weights
    sinc(x - j) sinc((x - j) / 3) normalised to sum 1; rows first, then columns."""

    def kernel(d: float) -> float:
        return float(np.sinc(d) * np.sinc(d / 3)) if abs(d) < 3 else 0.0

    def along_rows(a: np.ndarray) -> np.ndarray:
        n = a.shape[1]
        out = np.zeros((a.shape[0], n * scale))
        for i in range(n * scale):
            x = (i + 0.5) / scale - 0.5
            taps = range(math.floor(x) - 2, math.floor(x) + 4)
            weights = np.array([kernel(x - j) for j in taps])
            columns = a[:, [min(max(j, 0), n - 1) for j in taps]]
            out[:, i] = columns @ weights / weights.sum()
        return out

    return along_rows(along_rows(image).T).T


@pytest.mark.parametrize("scale", SCALES)
def test_lanczos_matches_the_direct_formula(scale: int) -> None:
    image = np.random.default_rng(scale).random((7, 9))
    ours = lanczos_upscale(torch.from_numpy(image)[None, None], scale)[0, 0].numpy()
    assert ours.shape == (7 * scale, 9 * scale)
    np.testing.assert_allclose(ours, lanczos3_reference(image, scale), atol=1e-12)


def test_lanczos_keeps_a_constant_and_is_close_to_but_not_bicubic() -> None:
    assert torch.allclose(LanczosSR(4)(torch.full((1, 2, 3, 6, 5), 0.3)), torch.tensor(0.3))
    torch.manual_seed(0)
    x = torch.rand(1, 2, 3, 16, 20)
    lanczos, bicubic = LanczosSR(3)(x), BicubicSR(3)(x)
    assert lanczos.shape == (1, 2, 3, 48, 60) and 0 <= lanczos.min() and lanczos.max() <= 1
    # Both are interpolating kernels of about the same width: on random pixels (std 0.29) they
    # differ by ~0.014 on average.
    assert 1e-3 < (lanczos - bicubic).abs().mean().item() < 0.03


@pytest.mark.parametrize("scale", SCALES)
def test_bicubic_entry_is_clamped_bicubic_upscale(scale: int) -> None:
    torch.manual_seed(scale)
    x = torch.rand(2, 3, 3, 8, 10) * 1.2 - 0.1  # out of range on purpose: the entry clamps
    expected = bicubic_upscale(x.reshape(6, 3, 8, 10), scale).clamp(0, 1).view(2, 3, 3, 8 * scale, 10 * scale)
    assert torch.equal(BicubicSR(scale)(x), expected)
    assert torch.equal(BicubicSR(scale)(x, slice(1, 3)), expected[:, 1:3])
    assert BicubicSR(scale).temporal_radius == LanczosSR(scale).temporal_radius == 0


def test_identity_light() -> None:
    x = torch.rand(4, 3, 8, 8)
    assert IdentitySR()(x) is x
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        IdentitySR()(x[None])
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        BicubicSR(2)(x)


def test_registered_without_weights() -> None:
    assert {"bicubic", "lanczos"} <= set(MODELS["strong"]) and "none" in MODELS["light"]
    for kind, name, cls in (
        ("strong", "bicubic", BicubicSR),
        ("strong", "lanczos", LanczosSR),
        ("light", "none", IdentitySR),
    ):
        spec = get_spec(kind, name)
        assert not spec.needs_weights and isinstance(spec.build(2), cls)
        assert weights_sha256(kind, name, 2) is None
        info = model_info(kind, name, 4)
        assert (info.sha256, info.path, info.temporal_radius) == (None, None, 0)
        model, sha256 = load_model(kind, name, 4)
        assert isinstance(model, cls) and sha256 is None and not model.training


def test_load_model_of_a_classical_method_runs_the_pair() -> None:
    strong, _ = load_model("strong", "lanczos", 2)
    light, _ = load_model("light", "none", 2)
    x = torch.rand(1, 3, 3, 6, 8)
    with torch.inference_mode():
        out = light(strong(x)[0])
    assert torch.equal(out, lanczos_upscale(x[0], 2).clamp(0, 1))


def test_own_weights_for_a_classical_method_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="classical method: it takes no weights"):
        load_model("strong", "bicubic", 2, weights_dir=tmp_path, sha256="0" * 64)
    with pytest.raises(WeightsError, match="classical method"):
        model_info("light", "none", 2, tmp_path, "0" * 64)
