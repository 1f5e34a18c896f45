"""CIFAR ResNets (He et al. 2016, sec. 4.2): a 3x3 stem, three stages of BasicBlocks, 6n+2 layers.

Widths follow RepDistiller: 16/32/64 with a 16-channel stem, and the 4x-wide ``x4`` variants
with a 32-channel stem and stages of 64/128/256.
"""

from cgankd.blocks.base import StagedNet
from cgankd.blocks.residual import resnet_trunk
from cgankd.nets.zoo import register_variant

STANDARD_WIDTHS = (16, 16, 32, 64)  # stem, then the three stages
X4_WIDTHS = (32, 64, 128, 256)


def cifar_resnet(depth: int, widths: tuple[int, int, int, int], num_outputs: int,
                 in_channels: int) -> StagedNet:
    blocks_per_stage = (depth - 2) // 6
    stem_width, *stage_widths = widths
    stem, stages = resnet_trunk(in_channels, stem_width, stage_widths, [blocks_per_stage] * 3)
    return StagedNet(stem, stages, stage_widths[-1], num_outputs)


for _depth in (8, 14, 20, 32, 44, 56, 110):
    register_variant(f"resnet{_depth}", cifar_resnet, _depth, STANDARD_WIDTHS)
for _depth in (8, 32):
    register_variant(f"resnet{_depth}x4", cifar_resnet, _depth, X4_WIDTHS)
