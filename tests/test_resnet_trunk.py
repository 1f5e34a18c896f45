"""The one ResNet trunk (cgankd/blocks/residual.py): its shape, its users, and the old files.

The DRE feature extractor and the ILI label-embedding regressor used to carry their own
BasicBlock; ``_legacy_trunk`` below is a frozen copy of how both laid out their trunk (one flat
nn.Sequential) and named their blocks, so the tests can pin that the merged trunk draws the
same initial weights from the same seed and loads state dicts those copies saved
(``dre/dre.pt``, ``cgan/checkpoint.pt``).
"""

import pytest
import torch
from torch import nn

from cgankd.dre.models import ClassFeatureExtractor
from cgankd.errors import CgankdInputError
from cgankd.gan.label_embedding import LabelEmbedRegressor
from cgankd.nets import build_net
from cgankd.blocks.residual import PooledResNet, ResidualBlock, resnet_trunk


class _DreBlock(nn.Module):  # frozen copy of dre/models.py's BasicBlock (conv1, bn1, ...)
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if stride != 1 or in_ch != out_ch:
            self.skip = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                      nn.BatchNorm2d(out_ch))


class _IliBlock(nn.Module):  # frozen copy of gan/label_embedding.py's _BasicBlock (body.0, ...)
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch))
        if stride != 1 or in_ch != out_ch:
            self.skip = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                      nn.BatchNorm2d(out_ch))


def _legacy_trunk(block: type[nn.Module], in_channels: int, width: int,
                  blocks: tuple[int, ...]) -> nn.Sequential:
    """The old flat layout: stem conv, BN, ReLU, the blocks, pooling (weights only, no forward)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU()]
    ch = width
    for stage, count in enumerate(blocks):
        for i in range(count):
            layers.append(block(ch, width * 2 ** stage, 2 if stage > 0 and i == 0 else 1))
            ch = width * 2 ** stage
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _values(module: nn.Module) -> list[torch.Tensor]:
    return list(module.state_dict().values())


def _equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_trunk_stages_widths_and_strides():
    stem, stages = resnet_trunk(3, 8, [8, 16, 32], [2, 1, 3])
    assert [len(stage) for stage in stages] == [2, 1, 3]
    assert all(isinstance(block, ResidualBlock) for stage in stages for block in stage)
    x = stem(torch.randn(2, 3, 32, 32))
    sizes = []
    for stage in stages:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]  # first stage keeps the size


@pytest.mark.parametrize("size", [16, 32])
def test_pooled_trunk_doubles_width_per_stage(size):
    trunk = PooledResNet(1, 4, (1, 2, 1, 1))
    assert trunk.embed_dim == 32
    assert trunk(torch.randn(2, 1, size, size)).shape == (2, 32)


@pytest.mark.parametrize("depths", [(), (2, 0), (0,)])
def test_trunk_rejects_empty_stages(depths):
    with pytest.raises(CgankdInputError, match="depth >= 1"):
        resnet_trunk(3, 8, [8 * 2 ** s for s in range(len(depths))], depths)


def test_dre_extractor_and_ili_regressor_build_the_one_trunk():
    users = [ClassFeatureExtractor(3, 10, (3, 4, 4), width=4).trunk,
             LabelEmbedRegressor(1, width=0.125).features]
    for trunk in users:
        assert isinstance(trunk, PooledResNet)
        blocks = [m for m in trunk.modules() if len(list(m.children())) and
                  type(m) not in (nn.Sequential, nn.ModuleList, PooledResNet)]
        assert blocks and all(type(m) is ResidualBlock for m in blocks)


def test_zoo_resnet_state_names_unchanged():
    names = set(build_net("resnet18", 10, 3).state_dict())
    assert {"stem.0.0.weight", "stages.0.1.body.1.1.running_var",
            "stages.1.0.shortcut.0.weight", "head.weight"} <= names
    assert {"stem.0.weight", "stages.1.0.shortcut.1.bias"} <= set(build_net("resnet8", 10, 3)
                                                                   .state_dict())


@pytest.mark.parametrize("width", [4, 8])
def test_dre_extractor_same_init_and_loads_old_state(width):
    torch.manual_seed(width)
    new = ClassFeatureExtractor(3, 10, (3, 4, 4), width=width)
    torch.manual_seed(width)
    old = _legacy_trunk(_DreBlock, 3, width, (3, 4, 6, 3))
    assert _equal(_values(old), _values(new.trunk))  # same draws in the same order

    old_file = {f"trunk.{k}": v + 1 for k, v in old.state_dict().items()}
    old_file.update({k: v for k, v in new.state_dict().items() if not k.startswith("trunk.")})
    assert {"trunk.3.conv1.weight", "trunk.6.skip.1.running_mean"} <= set(old_file)
    fresh = ClassFeatureExtractor(3, 10, (3, 4, 4), width=width)
    fresh.load_state_dict(old_file)  # strict: every old key found its new name
    assert _equal(_values(fresh), list(old_file.values()))


@pytest.mark.parametrize(("width", "blocks"), [(0.125, (3, 4, 6, 3)), (0.25, (1, 2))])
def test_ili_regressor_same_init_and_loads_old_state(width, blocks):
    torch.manual_seed(1)
    new = LabelEmbedRegressor(1, width=width, blocks=blocks)
    torch.manual_seed(1)
    old = _legacy_trunk(_IliBlock, 1, max(8, round(64 * width)), blocks)
    assert _equal(_values(old), _values(new.features))

    old_file = {f"features.{k}": v * 2 for k, v in old.state_dict().items()}
    old_file.update({k: v for k, v in new.state_dict().items() if not k.startswith("features.")})
    assert {"features.3.body.3.weight", "features.3.body.4.bias"} <= set(old_file)
    fresh = LabelEmbedRegressor(1, width=width, blocks=blocks)
    fresh.load_state_dict(old_file)
    assert _equal(_values(fresh), list(old_file.values()))


def test_new_names_load_and_stray_old_keys_are_reported():
    net = ClassFeatureExtractor(1, 3, (1, 2, 2), width=4, blocks=(1, 1))
    net.load_state_dict(net.state_dict())  # today's names pass through the hook untouched
    state = dict(net.state_dict(), **{"trunk.9.conv1.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="trunk.9.conv1.weight"):
        net.load_state_dict(state)
