"""Datasets held as tensors: small sets live whole in (device) memory and batch by indexing.

At the sizes this pipeline trains on (digits to CIFAR-100, 50-100k images of 32 px), keeping
uint8 images on the training device beats a DataLoader: no per-sample Python, no worker
processes, augmentation applied to a whole batch at once.
"""

from dataclasses import dataclass

import numpy as np
import torch

from cgankd.conventions import LabelScale, to_float
from cgankd.h5io import Split


@dataclass
class TensorSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 class ids, or float32 labels normalised to [0, 1]
    row: torch.Tensor  # int64 row numbers 0..N-1 (CRD's memory bank, the teacher table)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "TensorSet":
        return TensorSet(self.images.to(device), self.labels.to(device), self.row.to(device))

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Float images in [-1, 1], labels and row numbers of ``rows``."""
        return to_float(self.images[rows]), self.labels[rows], self.row[rows]


def tensorset_from_split(split: Split, label_scale: LabelScale | None) -> TensorSet:
    """A split file's content as tensors; regression labels normalised with ``label_scale``.

    ``row`` is the row number, not the split's ``index``: those stable ids can be large
    (source ids), while CRD's memory bank wants dense 0..N-1.
    """
    if split.task == "classification":
        labels = torch.from_numpy(split.labels.astype(np.int64))
    else:
        labels = torch.from_numpy(label_scale.normalise(split.labels.astype(np.float32)))
    return TensorSet(torch.from_numpy(split.images), labels, torch.arange(len(split.labels)))


def concat(sets: list[TensorSet]) -> TensorSet:
    """One set from several (real + fake); rows renumbered 0..N-1."""
    images = torch.cat([s.images for s in sets])
    labels = torch.cat([s.labels for s in sets])
    return TensorSet(images, labels, torch.arange(len(labels)))
