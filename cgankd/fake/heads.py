"""Adapters that let the generic trainer train the cDR-RS feature extractors.

The trainer wants ``objective(x, y, rows) -> (loss, parts)`` and a net whose plain call gives
outputs it can score on validation (logits, or a normalised label). These wrappers give the
extractor and the autoencoder that shape, so they get the trainer's schedule, best-on-val
selection and resume for free.
"""

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.dre.models import autoencoder_loss


class ScoredOutput(nn.Module):
    """``net(x)`` -> what validation scores: logits, or the regression head as (N, 1)."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if self.task == "classification" else out[2][:, None]


class ExtractorObjective(nn.Module):
    """CE on the extractor's logits, or the sparse-autoencoder loss (METHOD.md section 3)."""

    def __init__(self, model: nn.Module, task: str, sparsity: float, reg_weight: float):
        super().__init__()
        self.model, self.task = model, task
        self.sparsity, self.reg_weight = sparsity, reg_weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None):
        if self.task == "classification":
            logits, _ = self.model(x)
            loss = F.cross_entropy(logits, y)
            return loss, {"total": float(loss.detach())}
        recon, h, y_hat = self.model(x)
        loss, parts = autoencoder_loss(recon, x, h, y_hat, y, self.sparsity, self.reg_weight)
        return loss, {"total": parts.pop("loss"), **parts}


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature h of images x (float in [-1, 1]); both extractors return it second."""
    return model(x)[1]
