"""Tiny image sets shared by the trainer tests."""

import torch

from cgankd.train.tensorset import TensorSet


def bar_images(n: int = 96, k: int = 3, seed: int = 0) -> TensorSet:
    """8x8 noise with a bright bar whose row encodes the class: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=gen, dtype=torch.uint8)
    for c in range(k):
        images[labels == c, :, 2 * c + 1, :] = 250
    return TensorSet(images, labels, torch.arange(n))
