"""Conventions every stage shares: pixel range and regression label normalisation.

Images are stored as uint8 (N, C, H, W). Every net (teacher, student, GAN, extractors) sees
them as float in [-1, 1], the range a tanh generator produces, so real and generated images
go through the same nets unchanged. Regression labels are stored raw (degrees, years) and every
net sees them normalised to [0, 1] with the split file's ``label_min`` / ``label_max``; errors are
reported back in original units.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def to_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    x = torch.as_tensor(images)
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded, clamped (the inverse of ``to_float``)."""
    return x.detach().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class LabelScale:
    """Affine map between raw regression labels and [0, 1]: y_norm = (y - low) / (high - low)."""

    low: float
    high: float

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "LabelScale":
        return cls(float(attrs["label_min"]), float(attrs["label_max"]))

    @property
    def span(self) -> float:
        return self.high - self.low

    def normalise(self, y):
        return (y - self.low) / self.span

    def denormalise(self, y_norm):
        return y_norm * self.span + self.low

    def predicted(self, outputs):
        """A regressor's normalised outputs, (N,) or (N, 1), as labels in original units.

        Clipped to [0, 1] first: every training target lies in the label range, so a
        prediction outside it is the net overshooting, not information.
        """
        if isinstance(outputs, torch.Tensor):
            return self.denormalise(outputs.reshape(-1).clamp(0, 1))
        return self.denormalise(np.clip(np.asarray(outputs).reshape(-1), 0.0, 1.0))

    def as_dict(self) -> dict[str, float]:
        return {"label_min": self.low, "label_max": self.high}
