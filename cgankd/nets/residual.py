"""Post-activation residual blocks shared by the CIFAR and ImageNet-style ResNets."""

import torch
from torch import nn

from cgankd.nets.base import conv_bn


class ResidualBlock(nn.Module):
    """relu(body(x) + shortcut(x)): the post-activation residual unit of He et al. (2016)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity where shapes match, else a strided 1x1 conv + BN (the references' option B)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn(in_channels, out_channels, kernel_size=1, stride=stride, relu=False)


def basic_block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Two 3x3 convs; the first carries the stride."""
    body = nn.Sequential(conv_bn(in_channels, out_channels, stride=stride),
                         conv_bn(out_channels, out_channels, relu=False))
    return ResidualBlock(body, projection(in_channels, out_channels, stride))


def bottleneck_block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """1x1 reduce to a quarter, strided 3x3, 1x1 expand back to ``out_channels``."""
    mid = out_channels // 4
    body = nn.Sequential(conv_bn(in_channels, mid, kernel_size=1),
                         conv_bn(mid, mid, stride=stride),
                         conv_bn(mid, out_channels, kernel_size=1, relu=False))
    return ResidualBlock(body, projection(in_channels, out_channels, stride))
