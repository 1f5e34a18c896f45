"""CIFAR VGGs with BatchNorm (Simonyan & Zisserman 2015, as adapted in RepDistiller).

Five blocks of 3x3 conv-BN-ReLU, the classic fully connected layers replaced by global average
pooling and one linear layer. Blocks 1-4 each start with a 2x2 max-pool that acts only on maps
wider than 4 px: at 32 px this reproduces the reference (whose fourth pool runs only at 64 px,
leaving blocks 3 and 4 at 4x4), and at 16 px it keeps the last blocks from shrinking to 1x1.
"""

from torch import nn

from cgankd.blocks.base import MaxPoolAbove, StagedNet, conv_bn
from cgankd.nets.zoo import register_variant

# Conv widths per block, the block lengths giving the named depth (convs + 1 linear layer;
# vgg8's count follows RepDistiller's naming).
BLOCK_WIDTHS = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
SMALLEST_POOLED_MAP = 4  # maps this wide or smaller are not pooled further


def conv_block(in_channels: int, widths: list[int]) -> list[nn.Module]:
    layers = []
    for width in widths:
        layers.append(conv_bn(in_channels, width))
        in_channels = width
    return layers


def vgg(block_widths: list[list[int]], num_outputs: int, in_channels: int) -> StagedNet:
    stem_widths, *stage_widths = block_widths
    stem = nn.Sequential(*conv_block(in_channels, stem_widths))
    stages = []
    previous = stem_widths[-1]
    for widths in stage_widths:
        pool = MaxPoolAbove(kernel_size=2, stride=2, min_size=SMALLEST_POOLED_MAP)
        stages.append(nn.Sequential(pool, *conv_block(previous, widths)))
        previous = widths[-1]
    return StagedNet(stem, stages, previous, num_outputs)


for _name, _widths in BLOCK_WIDTHS.items():
    register_variant(_name, vgg, _widths)
