"""The one ResNet of the package: post-activation residual blocks and the trunk built from them.

The zoo's CIFAR and ImageNet-style ResNets, the DRE feature extractor (``cgankd/dre/models.py``)
and the CcGAN's ILI label-embedding regressor (``cgankd/gan/label_embedding.py``) all build
their trunk with ``resnet_trunk``.
"""

from collections.abc import Sequence

import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.blocks.base import BlockFactory, block_stages, conv_bn


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


def resnet_trunk(in_channels: int, stem_width: int, widths: Sequence[int],
                 depths: Sequence[int], make_block: BlockFactory = basic_block
                 ) -> tuple[nn.Sequential, list[nn.Sequential]]:
    """(stem, stages): a 3x3 stride-1 conv-BN-ReLU stem, then ``depths[s]`` blocks of width
    ``widths[s]`` per stage, the first block of every stage after the first halving the map.

    A stride-1 stem (CIFAR style, no max-pool) because the images here are 16-64 px.
    """
    if len(widths) != len(depths) or not depths or any(d < 1 for d in depths):
        raise CgankdInputError(f"a ResNet trunk needs one depth >= 1 per stage width, got "
                               f"widths {list(widths)}, depths {list(depths)}")
    strides = [1] + [2] * (len(widths) - 1)
    return (conv_bn(in_channels, stem_width),
            block_stages(make_block, stem_width, widths, depths, strides))


# Module paths inside one block as the two copies this trunk replaced named them: the DRE
# extractor's BasicBlock (conv1, bn1, ...) and the ILI regressor's _BasicBlock (body.0, ...,
# a flat conv-BN-ReLU-conv-BN). Files they wrote (dre/dre.pt, cgan/checkpoint.pt) still load.
_LEGACY_BLOCK_PATHS = {"conv1": "body.0.0", "bn1": "body.0.1", "conv2": "body.1.0",
                       "bn2": "body.1.1", "body.0": "body.0.0", "body.1": "body.0.1",
                       "body.3": "body.1.0", "body.4": "body.1.1",
                       "skip.0": "shortcut.0", "skip.1": "shortcut.1"}
_LEGACY_FIRST_BLOCK = 3  # the old flat layout: stem conv, stem BN, ReLU, then the blocks


class PooledResNet(nn.Module):
    """``resnet_trunk`` of ``width`` channels in the stem and first stage, doubling at each
    later stage, then global average pooling: x -> (N, ``embed_dim``) features, no head.

    Keeps PyTorch's default init (the zoo's Kaiming init is ``StagedNet``'s, not the trunk's).
    """

    def __init__(self, in_channels: int, width: int, depths: Sequence[int]):
        super().__init__()
        widths = [width * 2 ** stage for stage in range(len(depths))]
        stem, stages = resnet_trunk(in_channels, width, widths, depths)
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.embed_dim = widths[-1]
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)


def _rename_legacy_keys(trunk: PooledResNet, state_dict: dict, prefix: str, *_) -> None:
    """Rename, in place, the keys of a trunk saved as one flat nn.Sequential (before the copies
    were merged) to this module's names; keys already in the new names are left alone."""
    blocks = [f"stages.{s}.{i}" for s, stage in enumerate(trunk.stages) for i in range(len(stage))]
    flat = {"0": "stem.0", "1": "stem.1"}
    flat.update({str(_LEGACY_FIRST_BLOCK + k): path for k, path in enumerate(blocks)})
    for key in [k for k in state_dict if k.startswith(prefix)]:
        head, _, rest = key[len(prefix):].partition(".")
        if head not in flat:  # a new name, or a stray key strict loading will report
            continue
        if int(head) >= _LEGACY_FIRST_BLOCK:
            module, _, attr = rest.rpartition(".")
            rest = f"{_LEGACY_BLOCK_PATHS.get(module, module)}.{attr}"
        state_dict[f"{prefix}{flat[head]}.{rest}"] = state_dict.pop(key)
