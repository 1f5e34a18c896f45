"""DenseNet-BC (Huang et al. 2017) in its CIFAR form: a 3x3 stride-1 stem of 2k channels, no
max-pool, dense blocks of bottleneck layers joined by compressing transitions.

Each layer is BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) and appends its k new channels to its
input. A transition is BN-ReLU-Conv1x1 (channels halved, rounded down) then a 2x2 average pool.
A stage is one dense block plus the transition after it (the last block has none), so stage
outputs, the features, are what the next block receives; the final BN-ReLU is the neck.

``densenet121`` is the common CIFAR DenseNet-121 (blocks 6/12/24/16, k=32; the filter teacher
of cGAN-KD on CIFAR), ``densenet_bc_100_12`` the paper's DenseNet-BC with depth 100 and k=12
(three blocks of 16 layers). Three or four transitions take 16 px down to 4 or 2 px.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.blocks.base import StagedNet
from cgankd.nets.wrn import bn_relu
from cgankd.nets.zoo import register_variant

BOTTLENECK_FACTOR = 4  # the 1x1 conv of a layer widens to 4k channels
COMPRESSION = 0.5


class DenseLayer(nn.Module):
    """cat([x, conv3x3(bn-relu(conv1x1(bn-relu(x))))]): k new channels on top of the input."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        mid = BOTTLENECK_FACTOR * growth
        self.body = nn.Sequential(
            bn_relu(in_channels),
            nn.Conv2d(in_channels, mid, 1, bias=False),
            bn_relu(mid),
            nn.Conv2d(mid, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1, then a 2x2 average pool.

    The pool rounds up, so a 1-px map stays 1 px instead of vanishing; at even sizes (every size
    the zoo is run at) this is exactly the references' floor-mode pool.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.reduce = nn.Sequential(bn_relu(in_channels),
                                    nn.Conv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.reduce(x), 2, ceil_mode=True)


def densenet(block_depths: Sequence[int], growth: int, num_outputs: int,
             in_channels: int) -> StagedNet:
    channels = 2 * growth
    stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
    stages = []
    for index, depth in enumerate(block_depths):
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers.append(DenseLayer(channels, growth))
            channels += growth
        if index < len(block_depths) - 1:
            compressed = int(channels * COMPRESSION)
            layers.append(Transition(channels, compressed))
            channels = compressed
        stages.append(nn.Sequential(*layers))
    return StagedNet(stem, stages, channels, num_outputs, neck=bn_relu(channels))


register_variant("densenet121", densenet, (6, 12, 24, 16), 32)
register_variant("densenet_bc_100_12", densenet, (16, 16, 16), 12)
