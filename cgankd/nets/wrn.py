"""Wide ResNets (Zagoruyko & Komodakis 2016): pre-activation blocks, depth 6n+4, width factor k.

Stages of 16k/32k/64k channels after a plain 16-channel 3x3 stem; the final BN-ReLU is the neck,
so stage outputs (the features) are pre-activation sums. No dropout, as in RepDistiller.
"""

import torch
from torch import nn

from cgankd.blocks.base import StagedNet, block_stages
from cgankd.nets.zoo import register_variant

STEM_WIDTH = 16


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class PreActBlock(nn.Module):
    """x + conv(bn-relu(conv(bn-relu(x)))); a width or stride change projects the activated x."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.pre = bn_relu(in_channels)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False),
            bn_relu(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False))
        self.projection = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.pre(x)
        shortcut = x if self.projection is None else self.projection(activated)
        return self.body(activated) + shortcut


def wide_resnet(depth: int, widen: int, num_outputs: int, in_channels: int) -> StagedNet:
    blocks_per_stage = (depth - 4) // 6
    widths = (16 * widen, 32 * widen, 64 * widen)
    stem = nn.Conv2d(in_channels, STEM_WIDTH, 3, padding=1, bias=False)
    stages = block_stages(PreActBlock, STEM_WIDTH, widths, [blocks_per_stage] * 3, strides=(1, 2, 2))
    return StagedNet(stem, stages, widths[-1], num_outputs, neck=bn_relu(widths[-1]))


for _depth, _widen in ((16, 2), (40, 1), (40, 2)):
    register_variant(f"wrn_{_depth}_{_widen}", wide_resnet, _depth, _widen)
