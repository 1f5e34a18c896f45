"""Tiny image sets shared by the trainer tests."""

import torch

from cgankd.kd.objective import DistillObjective
from cgankd.nets import build_net
from cgankd.train.tensorset import TensorSet


def bar_images(n: int = 96, k: int = 3, seed: int = 0) -> TensorSet:
    """8x8 noise with a bright bar whose row encodes the class: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=gen, dtype=torch.uint8)
    for c in range(k):
        images[labels == c, :, 2 * c + 1, :] = 250
    return TensorSet(images, labels, torch.arange(n))


def toy_objective(seed: int = 0):
    """A no-KD objective over a small 3-class CNN for 8x8 images, and that CNN."""
    torch.manual_seed(seed)
    net = build_net("cnn", 3, 1, width=4, blocks=2)
    obj = DistillObjective("none", task="classification", student=net, teacher=None,
                           sample_input=torch.zeros(2, 1, 8, 8), n_data=96)
    return obj, net
