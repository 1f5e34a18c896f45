"""MobileNetV2 (Sandler et al. 2018) in its CIFAR form, as RepDistiller builds it.

Inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 project) after a stride-2
stem; the second stage keeps stride 1 so a 32-px input ends at 2x2, not 1x1. ReLU rather than
ReLU6, as in the reference. RepDistiller's CIFAR student is ``width_mult=0.5``.
"""

from functools import partial

import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.blocks.base import StagedNet, block_stages, conv_bn
from cgankd.nets.zoo import NETS

STEM_WIDTH = 32
LAST_WIDTH = 1280  # the 1x1 conv before pooling; scaled only for width_mult > 1, as published
EXPANSION = 6  # hidden width / input width in every block but the first stage's
# Stage widths, blocks per stage and first-block strides; the first stage does not expand.
WIDTHS = (16, 24, 32, 64, 96, 160, 320)
DEPTHS = (1, 2, 3, 4, 3, 3, 1)
STRIDES = (1, 1, 2, 2, 1, 2, 1)
SMALLEST_WIDTH_MULT = 1 / 16  # keeps the narrowest stage at one channel or more


class InvertedResidual(nn.Module):
    """[1x1 expand], 3x3 depthwise, 1x1 linear projection; adds the input where shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        layers = [conv_bn(in_channels, hidden, kernel_size=1)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, stride=stride, groups=hidden),
                   conv_bn(hidden, out_channels, kernel_size=1, relu=False)]
        self.body = nn.Sequential(*layers)
        self.adds_input = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.adds_input else out


@NETS.register("mobilenetv2")
def mobilenetv2(num_outputs: int, in_channels: int, *, width_mult: float = 1.0) -> StagedNet:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) \
            or width_mult < SMALLEST_WIDTH_MULT:
        raise CgankdInputError(f"net 'mobilenetv2': width_mult must be a number >= "
                               f"{SMALLEST_WIDTH_MULT}, got {width_mult!r}")
    stem_width = int(STEM_WIDTH * width_mult)
    widths = [int(width * width_mult) for width in WIDTHS]
    stages = (block_stages(partial(InvertedResidual, expansion=1), stem_width,
                           widths[:1], DEPTHS[:1], STRIDES[:1])
              + block_stages(partial(InvertedResidual, expansion=EXPANSION), widths[0],
                             widths[1:], DEPTHS[1:], STRIDES[1:]))
    last_width = int(LAST_WIDTH * width_mult) if width_mult > 1.0 else LAST_WIDTH
    return StagedNet(conv_bn(in_channels, stem_width, stride=2), stages, last_width, num_outputs,
                     neck=conv_bn(widths[-1], last_width, kernel_size=1))
