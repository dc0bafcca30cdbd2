"""A 3D U-Net sized for CPU inference.

Çiçek et al., "3D U-Net: learning dense volumetric segmentation from sparse annotation", MICCAI
2016, with the choices nnU-Net found robust (Isensee et al., Nat Methods 18:203, 2021): two 3x3x3
convolutions per level, instance normalisation, leaky ReLU, strided-convolution downsampling and
transposed-convolution upsampling. Four levels at 2 mm voxels see about 47 voxels (94 mm) at the
bottom level, a whole ventricle with its neighbours; ``width`` channels at the top level, doubled
per level.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1, bias=False), nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3D(nn.Module):
    """``levels``-level 3D U-Net from ``in_channels`` to ``n_classes`` logits; spatial sizes must be
    divisible by 2**(levels-1)."""

    def __init__(self, n_classes: int, in_channels: int = 1, width: int = 16, levels: int = 4):
        super().__init__()
        self.config = {"n_classes": n_classes, "in_channels": in_channels, "width": width, "levels": levels}
        chans = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList([_block(in_channels, chans[0])] +
                                  [_block(chans[i - 1], chans[i], stride=2) for i in range(1, levels)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(chans[i], chans[i - 1], 2, stride=2)
                                 for i in range(levels - 1, 0, -1)])
        self.merge = nn.ModuleList([_block(2 * chans[i - 1], chans[i - 1]) for i in range(levels - 1, 0, -1)])
        self.head = nn.Conv3d(chans[0], n_classes, 1)

    @property
    def divisor(self) -> int:
        return 2 ** (self.config["levels"] - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)
