"""SRVGGNetCompact: Real-ESRGAN's layout, size and residual over nearest upscaling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.baselines import SRVGGNetCompact


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape(scale: int) -> None:
    x = torch.rand(2, 3, 10, 14)
    assert SRVGGNetCompact(upscale=scale)(x).shape == (2, 3, 10 * scale, 14 * scale)


def test_parameter_count_of_the_64_feature_16_conv_model() -> None:
    # 3->64 conv + 16 64->64 convs + 64->48 conv (weights and biases) + 17 PReLUs of 64:
    # 1,792 + 590,848 + 27,696 + 1,088 = 621,424 at x4 (Real-ESRGAN's "0.6M" compact model).
    assert sum(p.numel() for p in SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4).parameters()) == 621_424


def test_state_dict_keys_follow_the_original() -> None:
    keys = SRVGGNetCompact().state_dict().keys()
    # conv, PReLU, 16 x (conv, PReLU), conv: body.0 .. body.34, PReLU weights at odd indices.
    assert {"body.0.weight", "body.1.weight", "body.33.weight", "body.34.weight", "body.34.bias"} <= set(keys)
    assert len(keys) == 17 * 2 + 17 + 2


def test_output_is_a_residual_over_nearest_upscaling() -> None:
    model = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    x = torch.rand(1, 3, 6, 5)
    assert torch.equal(model(x), F.interpolate(x, scale_factor=4, mode="nearest"))
