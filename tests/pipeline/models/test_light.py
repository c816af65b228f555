"""LightSR: shapes, honest start (identity), clamped residual."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models.light import LightSR


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_fresh_model_returns_its_input(unshuffle: int) -> None:
    torch.manual_seed(0)
    model = LightSR(features=8, n_convs=3, unshuffle=unshuffle).eval()
    x = torch.rand(2, 3, 17, 23)  # odd sizes: padded to whole blocks and cropped back
    with torch.no_grad():
        assert torch.equal(model(x), x)


@pytest.mark.parametrize("unshuffle", [1, 2])
def test_residual_changes_output_within_range(unshuffle: int) -> None:
    torch.manual_seed(0)
    model = LightSR(features=8, n_convs=2, unshuffle=unshuffle).eval()
    nn.init.normal_(model.tail.weight, std=0.5)
    x = torch.rand(1, 3, 15, 16)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert (y - x).abs().max() > 1e-2
    assert y.min() >= 0 and y.max() <= 1


def test_unshuffled_body_sees_twice_as_far() -> None:
    """A change at one pixel reaches r times further through the same number of convs."""
    reach = {}
    for r in (1, 2):
        torch.manual_seed(0)
        model = LightSR(features=4, n_convs=1, unshuffle=r).eval()
        nn.init.normal_(model.tail.weight, std=0.5)
        x = torch.full((1, 3, 32, 32), 0.5)
        bumped = x.clone()
        bumped[..., 16, 16] = 0.9
        with torch.no_grad():
            moved = (model(bumped) - model(x)).abs().sum(dim=(0, 1)) > 0
        cols = moved.any(dim=0).nonzero()
        reach[r] = int(cols.max() - cols.min())
    assert reach[2] >= 2 * reach[1]


def test_rejects_wrong_layout() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        LightSR(features=4, n_convs=1)(torch.rand(1, 2, 3, 8, 8))
