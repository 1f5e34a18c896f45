"""The net zoo's contract: every registered net, both tasks, 16/32/64 px, 1 or 3 channels."""

import pytest
import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.nets import NETS, build_net, net_names

EXPECTED_NAMES = {
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet8x4", "resnet32x4", "wrn_16_2", "wrn_40_1", "wrn_40_2",
    "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "mobilenetv2", "shufflenetv1", "shufflenetv2",
    "resnet18", "resnet34", "resnet50", "densenet121", "densenet_bc_100_12", "cnn",
}
SIZES = (16, 32, 64)
BATCH = 2
# (num_outputs, in_channels): a 10-class RGB classifier and a grayscale regressor. Each net is
# built once per task and run at every size, backward only at 16 px.
TASKS = {"classify-rgb": (10, 3), "regress-gray": (1, 1)}



def first_conv(net: nn.Module) -> nn.Conv2d:
    return next(module for module in net.modules() if isinstance(module, nn.Conv2d))


def test_registry_holds_exactly_the_zoo():
    assert set(net_names()) == EXPECTED_NAMES
    assert net_names() == NETS.names()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_net_contract(name, task):
    num_outputs, in_channels = TASKS[task]
    torch.manual_seed(0)
    net = build_net(name, num_outputs, in_channels)
    assert net.num_outputs == num_outputs
    assert isinstance(net.embed_dim, int)

    for size in SIZES:
        x = torch.randn(BATCH, in_channels, size, size)
        with torch.set_grad_enabled(size == SIZES[0]):
            out, feats = net(x, return_features=True)
        assert out.shape == (BATCH, num_outputs), size
        assert len(feats) >= 3, size  # stem, at least one stage, embedding
        for feat in feats[:-1]:
            assert feat.dim() == 4 and feat.shape[0] == BATCH, (size, feat.shape)
        assert feats[-1].shape == (BATCH, net.embed_dim), size
        if size == SIZES[0]:
            with torch.no_grad():
                plain = net(x)
            assert torch.allclose(plain, out.detach(), atol=1e-5)
            out.sum().backward()

    grad = first_conv(net).weight.grad
    assert grad is not None and grad.abs().sum() > 0
    unused = [pname for pname, param in net.named_parameters() if param.grad is None]
    assert not unused


def test_unknown_net_is_named():
    with pytest.raises(CgankdInputError, match="'no_such_net'.*known: cnn"):
        build_net("no_such_net", 10)


def test_unknown_option_is_named():
    with pytest.raises(CgankdInputError, match="net.cnn.depth"):
        build_net("cnn", 10, depth=4)
    with pytest.raises(CgankdInputError, match="'resnet20' takes no options; got width"):
        build_net("resnet20", 10, width=4)


@pytest.mark.parametrize("name, what, options, num_outputs", [
    ("cnn", "width", {"width": 0}, 10),
    ("cnn", "blocks", {"blocks": 1.5}, 10),
    ("mobilenetv2", "width_mult", {"width_mult": 0.0}, 10),
    ("resnet8", "num_outputs", {}, 0),
])
def test_bad_values_are_rejected(name, what, options, num_outputs):
    with pytest.raises(CgankdInputError, match=what):
        build_net(name, num_outputs, **options)


def count_parameters(net: nn.Module) -> int:
    return sum(param.numel() for param in net.parameters())


def test_cnn_grows_with_width_and_follows_its_layout():
    counts = [count_parameters(build_net("cnn", 10, 1, width=width)) for width in (4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 3
    net = build_net("cnn", 10, 1, width=8, blocks=3)
    _, feats = net(torch.randn(BATCH, 1, 16, 16), return_features=True)
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 8, 8), (16, 4, 4), (32, 4, 4), (32,)]
    assert net.embed_dim == 32


def test_cnn_with_more_blocks_than_halvings_still_runs():
    net = build_net("cnn", 3, 1, width=2, blocks=6)  # 16 px halves to 1x1 after four pools
    assert net(torch.randn(BATCH, 1, 16, 16)).shape == (BATCH, 3)


@pytest.mark.parametrize("name", ["cnn", "resnet8"])
def test_build_is_deterministic_under_seed(name):
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        states.append(build_net(name, 10).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_mobilenetv2_width_mult_narrows_the_net():
    half = build_net("mobilenetv2", 10, width_mult=0.5)
    assert count_parameters(half) < count_parameters(build_net("mobilenetv2", 10))
    assert half(torch.randn(BATCH, 3, 32, 32)).shape == (BATCH, 10)


def test_vgg_keeps_the_reference_downsampling_at_32px():
    # RepDistiller's CIFAR VGG skips its fourth max-pool below 64 px: blocks 3 and 4 run at 4x4.
    _, feats = build_net("vgg8", 10)(torch.randn(BATCH, 3, 32, 32), return_features=True)
    assert [f.shape[-1] for f in feats[:-1]] == [32, 16, 8, 4, 4]


def test_imagenet_resnet_pools_its_stem_only_above_64px():
    net = build_net("resnet18", 10)
    with torch.no_grad():
        _, small = net(torch.randn(BATCH, 3, 64, 64), return_features=True)
        _, large = net(torch.randn(BATCH, 3, 128, 128), return_features=True)
    assert small[0].shape[-1] == 64 and large[0].shape[-1] == 64
