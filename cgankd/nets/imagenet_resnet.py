"""ImageNet-style ResNets 18/34/50 (He et al. 2016) adapted to small inputs.

Four stages of 64/128/256/512 base widths (x4 for Bottleneck), as torchvision builds them,
but with a 3x3 stride-1 stem: a 7x7/2 conv and a max-pool would leave a 32-px image 8x8 after
the stem. The stem's max-pool is kept for inputs wider than 64 px (e.g. 128-px ImageNet-100).
"""

from torch import nn

from cgankd.blocks.base import BlockFactory, MaxPoolAbove, StagedNet
from cgankd.blocks.residual import basic_block, bottleneck_block, resnet_trunk
from cgankd.nets.zoo import register_variant

STEM_WIDTH = 64
BASE_WIDTHS = (64, 128, 256, 512)
LARGEST_UNPOOLED_INPUT = 64  # px; wider inputs get the stem's 3x3/2 max-pool


def imagenet_resnet(make_block: BlockFactory, expansion: int, depths: tuple[int, ...],
                    num_outputs: int, in_channels: int) -> StagedNet:
    widths = [width * expansion for width in BASE_WIDTHS]
    stem, stages = resnet_trunk(in_channels, STEM_WIDTH, widths, depths, make_block)
    stem = nn.Sequential(stem, MaxPoolAbove(kernel_size=3, stride=2,
                                            min_size=LARGEST_UNPOOLED_INPUT))
    return StagedNet(stem, stages, widths[-1], num_outputs)


register_variant("resnet18", imagenet_resnet, basic_block, 1, (2, 2, 2, 2))
register_variant("resnet34", imagenet_resnet, basic_block, 1, (3, 4, 6, 3))
register_variant("resnet50", imagenet_resnet, bottleneck_block, 4, (3, 4, 6, 3))
