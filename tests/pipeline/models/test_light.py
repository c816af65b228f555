"""LightSR: shapes, honest start (identity), clamped residual."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models.light import LightSR


def test_fresh_model_returns_its_input() -> None:
    torch.manual_seed(0)
    model = LightSR(features=8, n_convs=3).eval()
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_residual_changes_output_within_range() -> None:
    torch.manual_seed(0)
    model = LightSR(features=8, n_convs=2).eval()
    nn.init.normal_(model.tail.weight, std=0.5)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert (y - x).abs().max() > 1e-2
    assert y.min() >= 0 and y.max() <= 1


def test_rejects_wrong_layout() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        LightSR(features=4, n_convs=1)(torch.rand(1, 2, 3, 8, 8))
