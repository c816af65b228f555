"""Published architectures to measure the models against (random weights: speed only).

SRVGGNetCompact is Real-ESRGAN's compact model (xinntao/Real-ESRGAN,
realesrgan/archs/srvgg_arch.py; `realesr-animevideov3` uses 64 features and 16 convs):
a plain stack of 3x3 convolutions at LR with PReLU activations, one pixel shuffle at the
end, and the nearest-upsampled input added as the base. Module names and order follow the
original (`body.<i>`), so its published state dicts would load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    """(N, 3, h, w) -> (N, 3, h*upscale, w*upscale); unclamped, like the original."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
    ):
        super().__init__()
        self.upscale = upscale
        layers: list[nn.Module] = [
            nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
            nn.PReLU(num_parameters=num_feat),
        ]
        for _ in range(num_conv):
            layers += [
                nn.Conv2d(num_feat, num_feat, 3, 1, 1),
                nn.PReLU(num_parameters=num_feat),
            ]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The network learns the residual over nearest-neighbour upscaling.
        return self.upsampler(self.body(x)) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
