"""The KD-loss registry and the interface every distillation term implements.

A term is an ``nn.Module`` built from the shapes one probe forward of each net produced, so its
trainable parts (FitNet regressor, CRD heads, ...) are sized before training starts and go to
the optimizer with the student. Every term is called the same way:
``loss(s_out, t_out, s_feats, t_feats, labels, rows) -> scalar``, ``rows`` being
each sample's row in the training set (CRD's memory bank is indexed by it).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.registry import Registry

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

KD_LOSSES = Registry("KD loss")


def check_task(task: str) -> None:
    if task not in TASKS:
        raise CgankdInputError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


@dataclass(frozen=True)
class ProbeShapes:
    """What one forward of each net returned: the shapes a term sizes its parts from."""

    student_out: torch.Size
    teacher_out: torch.Size
    student_feats: tuple[torch.Size, ...]  # stem, each stage, then the pooled embedding
    teacher_feats: tuple[torch.Size, ...]


class KDLoss(nn.Module):
    """Base of every registered term; subclasses set ``tasks`` and ``DEFAULTS``.

    ``where`` ("kd.<name>") prefixes every error about this term's options, matching the
    config key the user has to fix.
    """

    tasks: ClassVar[frozenset[str]] = frozenset(TASKS)  # the tasks this term is defined for
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict[str, Any],
                 where: str):
        super().__init__()
        self.task = task
        self.where = where

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
