"""The skeleton every zoo net shares, and the conv building blocks the nets are made of.

A net is a stem, a list of stages, an optional neck (the layers between the last stage and the
pooling, e.g. WideResNet's final BN-ReLU), global average pooling and one linear head.
Feature-based KD losses read the intermediate tensors, so one forward serves both uses: a plain
call returns the head's output; ``return_features=True`` also returns the tensor after the stem
and after each stage (each exactly what the next part receives), then the pooled embedding.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# (in_channels, out_channels, stride) -> block
BlockFactory = Callable[[int, int, int], nn.Module]


class StagedNet(nn.Module):
    """Stem -> stages -> neck -> global average pool -> linear head with ``num_outputs`` outputs."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], embed_dim: int,
                 num_outputs: int, neck: nn.Module | None = None):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.neck = neck if neck is not None else nn.Identity()
        # Adaptive pooling makes the head independent of the input size (16, 32, 64 px...).
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(embed_dim, num_outputs)
        self.embed_dim = embed_dim
        self.num_outputs = num_outputs
        init_weights(self)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.stem(x)
        feats = [h]
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        embedding = torch.flatten(self.pool(self.neck(h)), 1)
        out = self.head(embedding)
        if not return_features:
            return out
        return out, feats + [embedding]


def init_weights(net: nn.Module) -> None:
    """Kaiming-normal convs (fan-out, as the CIFAR KD references do), BN scale 1 and shift 0.

    The linear head keeps PyTorch's default init.
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
            groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias: the BN shift replaces it), BN and, unless ``relu=False``, ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        # In place is safe: it only ever overwrites the BN output it follows.
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MaxPoolAbove(nn.Module):
    """A max-pool applied only to maps wider than ``min_size``; smaller maps pass unchanged.

    Lets one set of weights follow a reference's downsampling at its native input size while
    not shrinking smaller inputs to nothing. Parameter-free, so the state dict is the same at
    every input size.
    """

    def __init__(self, kernel_size: int, stride: int, min_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.min_size = min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] <= self.min_size:
            return x
        return F.max_pool2d(x, self.kernel_size, self.stride, padding=(self.kernel_size - 1) // 2)


def block_stages(make_block: BlockFactory, in_channels: int, widths: Sequence[int],
                 depths: Sequence[int], strides: Sequence[int]) -> list[nn.Sequential]:
    """One stage per width: ``depth`` blocks, the first changing width and stride."""
    stages = []
    for width, depth, stride in zip(widths, depths, strides, strict=True):
        blocks = [make_block(in_channels, width, stride)]
        blocks += [make_block(width, width, 1) for _ in range(depth - 1)]
        stages.append(nn.Sequential(*blocks))
        in_channels = width
    return stages
