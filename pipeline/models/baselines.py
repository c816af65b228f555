"""Published architectures to measure the models against (random weights: speed only): Real-ESRGAN's
compact model and ESRGAN's RRDBNet.

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


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the block's output is scaled by 0.2 and added to its input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator (xinntao/BasicSR, basicsr/archs/rrdbnet_arch.py; Real-ESRGAN x4plus uses
    64 features, 23 blocks, growth 32): (N, 3, h, w) -> (N, 3, h*scale, w*scale), unclamped.

    The trunk runs at LR, then two nearest x2 steps each followed by a conv. As in the original,
    x2 first folds 2x2 pixels into channels (pixel unshuffle) so the same x4 tail serves it; x3,
    which the original lacks, takes one nearest x3 step instead (`conv_up2` then does not exist).
    Module names follow the original, so its published x2/x4 state dicts would load unchanged.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"RRDBNet upscales by 2, 3 or 4, not {scale}")
        self.scale = scale
        unshuffled_in = num_in_ch * 4 if scale == 2 else num_in_ch
        self.conv_first = nn.Conv2d(unshuffled_in, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if scale != 3:
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, 2) if self.scale == 2 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        if self.scale == 3:
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=3, mode="nearest")))
        else:
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
