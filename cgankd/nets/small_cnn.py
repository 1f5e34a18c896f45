"""``cnn``: a small plain conv net, the cheap default for the offline 8x8-digits pipeline.

``blocks`` stages of two 3x3 conv-BN-ReLU layers, doubling the width each stage and halving the
map between stages. The first stage doubles as the stem.
"""

from torch import nn

from cgankd.blocks.base import StagedNet, conv_bn
from cgankd.nets.zoo import NETS, require_positive_int


@NETS.register("cnn")
def cnn(num_outputs: int, in_channels: int, *, width: int = 32, blocks: int = 3) -> StagedNet:
    """``width``: channels of the first stage; ``blocks``: number of stages."""
    require_positive_int("cnn", "width", width)
    require_positive_int("cnn", "blocks", blocks)
    stages = []
    previous = in_channels
    for index in range(blocks):
        channels = width * 2 ** index
        layers = [conv_bn(previous, channels), conv_bn(channels, channels)]
        if index < blocks - 1:
            # ceil_mode lets a 1x1 map (many blocks, small input) pass instead of vanishing.
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        stages.append(nn.Sequential(*layers))
        previous = channels
    stem, *rest = stages
    return StagedNet(stem, rest, previous, num_outputs)
