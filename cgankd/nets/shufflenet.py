"""ShuffleNet v1 (Zhang et al. 2018) and v2 (Ma et al. 2018) in their CIFAR form (RepDistiller).

Both start with a 1x1 conv to 24 channels at full resolution (no stride, no max-pool) and have
three stages, each opening with a stride-2 unit. v1: groups 3, widths 240/480/960, 4/8/4 units.
v2 (1x): widths 116/232/464, 4/8/4 units, then a 1x1 conv to 1024 channels as the neck.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.blocks.base import StagedNet, block_stages, conv_bn
from cgankd.nets.zoo import NETS

STEM_WIDTH = 24
DEPTHS = (4, 8, 4)  # units per stage, the stride-2 one included
STRIDES = (2, 2, 2)
V1_WIDTHS = (240, 480, 960)
V1_GROUPS = 3
V2_WIDTHS = (116, 232, 464)
V2_LAST_WIDTH = 1024


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups so the next group conv mixes them."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleV1Unit(nn.Module):
    """1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv, joined to the input by a sum
    (stride 1) or, at stride 2, concatenated with the 3x3-average-pooled input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int):
        super().__init__()
        # At stride 2 the pooled input supplies in_channels of the output channels.
        branch = out_channels - in_channels if stride == 2 else out_channels
        mid = branch // 4
        # The stem's 24 channels are too few to split, so the net's first 1x1 conv is dense.
        self.reduce_groups = 1 if in_channels == STEM_WIDTH else groups
        self.reduce = conv_bn(in_channels, mid, kernel_size=1, groups=self.reduce_groups)
        self.transform = nn.Sequential(
            conv_bn(mid, mid, stride=stride, groups=mid, relu=False),
            conv_bn(mid, branch, kernel_size=1, groups=groups, relu=False))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.transform(channel_shuffle(self.reduce(x), self.reduce_groups))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], dim=1))
        return F.relu(out + x)


def _v2_branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """1x1 conv-BN-ReLU, 3x3 depthwise conv-BN, 1x1 conv-BN-ReLU."""
    return nn.Sequential(conv_bn(in_channels, out_channels, kernel_size=1),
                         conv_bn(out_channels, out_channels, stride=stride, groups=out_channels,
                                 relu=False),
                         conv_bn(out_channels, out_channels, kernel_size=1))


class ShuffleV2Unit(nn.Module):
    """Two half-width branches, concatenated and shuffled. At stride 1 one half of the input
    passes through untouched; at stride 2 both branches read the whole input and downsample."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        half = out_channels // 2
        self.shortcut = None
        if stride == 2:
            self.shortcut = nn.Sequential(
                conv_bn(in_channels, in_channels, stride=2, groups=in_channels, relu=False),
                conv_bn(in_channels, half, kernel_size=1))
            self.branch = _v2_branch(in_channels, half, stride)
        else:
            self.branch = _v2_branch(half, half, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch(transformed)], dim=1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], dim=1)
        return channel_shuffle(out, 2)


@NETS.register("shufflenetv1")
def shufflenetv1(num_outputs: int, in_channels: int) -> StagedNet:
    stages = block_stages(partial(ShuffleV1Unit, groups=V1_GROUPS), STEM_WIDTH, V1_WIDTHS,
                          DEPTHS, STRIDES)
    return StagedNet(conv_bn(in_channels, STEM_WIDTH, kernel_size=1), stages, V1_WIDTHS[-1],
                     num_outputs)


@NETS.register("shufflenetv2")
def shufflenetv2(num_outputs: int, in_channels: int) -> StagedNet:
    stages = block_stages(ShuffleV2Unit, STEM_WIDTH, V2_WIDTHS, DEPTHS, STRIDES)
    return StagedNet(conv_bn(in_channels, STEM_WIDTH, kernel_size=1), stages, V2_LAST_WIDTH,
                     num_outputs, neck=conv_bn(V2_WIDTHS[-1], V2_LAST_WIDTH, kernel_size=1))
