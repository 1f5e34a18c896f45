"""Tiny image sets shared by the trainer tests."""

from pathlib import Path

import numpy as np
import torch

from cgankd.h5io import Split, write_split
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


def write_tiny_splits(folder: Path, task: str, size: int = 8, label_max: float = 90.0,
                      bar: bool = False) -> dict[str, Path]:
    """train.h5 (60 images) and val.h5 (30) of random size x size grey images, 3 classes or
    labels in [0, label_max]; ``bar`` draws a bright row per class (or label) to learn."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, n in (("train", 60), ("val", 30)):
        if task == "classification":
            labels = np.arange(n) % 3
            attrs = {"task": task, "num_classes": 3, "class_names": ["a", "b", "c"]}
        else:
            labels = rng.uniform(0, label_max, n).astype(np.float32)
            attrs = {"task": task, "label_min": 0.0, "label_max": label_max, "label_unit": "deg"}
        images = rng.integers(0, 255, (n, 1, size, size), dtype=np.uint8)
        if bar:
            images[np.arange(n), 0, 2 * (labels.astype(int) % 3), :] = 255
        paths[name] = Path(folder) / f"{name}.h5"
        write_split(paths[name], Split(images, labels, np.arange(n), attrs))
    return paths
