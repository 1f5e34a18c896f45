"""The toy data set of the unit and stage tests: what it is, once. (The pipeline tests prepare
the digits dataset through the workflow; the loader tests write each dataset's raw format.)

Grey 8x8 uint8 images of noise; classification has ``NUM_CLASSES`` classes, labels
``arange(n) % 3``; regression labels are drawn uniformly in [0, ``LABEL_MAX``] degrees.
Variants: a bright row per class that a net can learn in a few steps (``bar``), other sizes
or channels, or the caller's own images / labels (a test whose meaning lives in the pixels).
Splits are written with ``h5io.write_split``; several splits from one builder share one seeded
stream, so the files differ from each other and are the same on every run.
"""

from pathlib import Path

import numpy as np
import torch

from cgankd.h5io import Split, write_h5, write_split
from cgankd.kd.objective import DistillObjective
from cgankd.nets import build_net
from cgankd.train.tensorset import TensorSet

NUM_CLASSES = 3
CLASS_NAMES = ["a", "b", "c"]
LABEL_MIN, LABEL_MAX = 0.0, 90.0  # regression labels in [LABEL_MIN, LABEL_MAX] LABEL_UNIT
LABEL_UNIT = "degrees"


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


def toy_attrs(task: str, label_max: float = LABEL_MAX, label_min: float = LABEL_MIN) -> dict:
    """The split attributes of the toy set for ``task``."""
    if task == "classification":
        return {"task": task, "num_classes": NUM_CLASSES, "class_names": list(CLASS_NAMES)}
    return {"task": task, "label_min": label_min, "label_max": label_max, "label_unit": LABEL_UNIT}


def toy_split(n: int = 24, task: str = "classification", *, seed: int = 0,
              rng: np.random.Generator | None = None, channels: int = 1, size: int = 8,
              label_max: float = LABEL_MAX, bar: bool = False, images: np.ndarray | None = None,
              labels: np.ndarray | None = None, **attrs) -> Split:
    """n toy samples in memory (see the module docstring); ``rng`` (else one seeded with
    ``seed``) draws the regression labels, then the images. ``images`` / ``labels`` replace
    the drawn ones (and set n); ``attrs`` update the split's attributes."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    n = len(labels) if labels is not None else len(images) if images is not None else n
    if labels is None:
        labels = (np.arange(n) % NUM_CLASSES if task == "classification"
                  else rng.uniform(0, label_max, n).astype(np.float32))
    if images is None:
        images = rng.integers(0, 255, (n, channels, size, size), dtype=np.uint8)
        if bar:
            images[np.arange(n), 0, 2 * (labels.astype(int) % NUM_CLASSES), :] = 255
    split_attrs = {**toy_attrs(task, label_max, attrs.pop("label_min", LABEL_MIN)), **attrs}
    return Split(images, labels, np.arange(len(labels), dtype=np.int64), split_attrs)


def write_toy_split(path: Path, n: int = 24, task: str = "classification", **options) -> Path:
    """``toy_split(n, task, **options)`` written to ``path``; returns the path."""
    write_split(path, toy_split(n, task, **options))
    return Path(path)


def write_fake_set(path: Path, images: np.ndarray, labels: np.ndarray,
                   attrs: dict | None = None, **columns: np.ndarray) -> Path:
    """A fake set as the quality metrics and the sample sheets read one: the caller's
    ``images`` and ``labels``, any other ``columns``, ``attrs`` (none by default)."""
    write_h5(path, {"images": images, "labels": labels, **columns}, attrs)
    return Path(path)


def write_tiny_splits(folder: Path, task: str, size: int = 8, label_max: float = LABEL_MAX,
                      bar: bool = False) -> dict[str, Path]:
    """train.h5 (60 samples) and val.h5 (30) in ``folder``, drawn from one stream seeded 0;
    ``bar`` draws a bright row per class (or label) to learn."""
    rng = np.random.default_rng(0)
    return {name: write_toy_split(Path(folder) / f"{name}.h5", n, task, rng=rng, size=size,
                                  label_max=label_max, bar=bar)
            for name, n in (("train", 60), ("val", 30))}


def write_bar_splits(folder: Path, task: str) -> dict[str, Path]:
    """train (48), val (24) and test (24) that a teacher, a GAN and a DR model learn in a few
    steps: dim noise and, for classification, a bright row per class; regression labels are
    8 levels in [5, 85] degrees, 6 images each (the fake-data stage tests' set)."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, n in (("train", 48), ("val", 24), ("test", 24)):
        images = rng.integers(0, 80, (n, 1, 8, 8), dtype=np.uint8)
        labels = None
        if task == "classification":
            labels = np.arange(n) % NUM_CLASSES
            for k in range(NUM_CLASSES):
                images[labels == k, :, 2 * k + 1, :] = 240
        else:
            labels = np.repeat(np.linspace(5, 85, 8), n // 8).astype(np.float32)
        paths[name] = write_toy_split(Path(folder) / f"{name}.h5", n, task, images=images,
                                      labels=labels)
    return paths
