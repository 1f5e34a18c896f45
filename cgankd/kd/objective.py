"""The student's training objective: task loss plus distillation terms, RepDistiller-style.

loss = gamma * task_loss + alpha * vanilla KD + beta * method term
(task loss: CE for classification, MSE on normalised labels for regression). The default
weights follow ``convention`` (cgankd: alpha 1 beside a method term; repdistiller: alpha 0).
"""

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.kd.base import CLASSIFICATION, KD_LOSSES, check_task
from cgankd.kd.build import build_kd_loss, loss_class, loss_options
# The method names, default weights and their checks live torch-free (plan-time checks).
from cgankd.stage_options.kd import (DEFAULT_CONVENTION, METHOD_BETA,  # noqa: F401
                                     NO_KD, TASK_ONLY_WEIGHTS, VANILLA_KD, VANILLA_KD_WEIGHTS,
                                     checked_weights, default_weights)


def checked_options(options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per-term overrides ``{name: {key: value}}``, every name and key checked."""
    checked = {}
    for name, overrides in (options or {}).items():
        KD_LOSSES.get(name)  # an unknown term name fails here, naming it
        if not isinstance(overrides, Mapping):
            raise CgankdInputError(f"kd.{name} must be a mapping of options, got {overrides!r}")
        loss_options(name, overrides)
        checked[name] = dict(overrides)
    return checked


class DistillObjective(nn.Module):
    """``objective(x, labels, rows) -> (loss, parts)`` for one student batch.

    ``options`` maps a term's name to its overrides, e.g. ``{"kd": {"temperature": 3}}``.
    The teacher is deliberately not a submodule: it is not trained, saved, or switched to
    train mode with the objective, and the caller moves it to the device. It runs in eval mode
    without gradients, and only when a KD weight is non-zero. ``data_labels`` (the training
    set's labels, one per row) feed terms that need them (CRD's exact negatives).
    """

    def __init__(self, method: str, *, task: str, student: nn.Module,
                 teacher: nn.Module | None, sample_input: torch.Tensor, n_data: int,
                 weights: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None,
                 convention: str = DEFAULT_CONVENTION,
                 data_labels: torch.Tensor | None = None):
        super().__init__()
        check_task(task)
        if method != NO_KD:
            loss_class(method, task)  # unknown or task-inapplicable method: fail first
        self.method = method
        self.task = task
        self.weights = checked_weights(method, weights, convention=convention)
        options = checked_options(options)
        self.student = student
        object.__setattr__(self, "teacher", teacher)  # kept out of the module tree, see above
        self.needs_teacher = self.weights["alpha"] > 0 or self.weights["beta"] > 0
        if self.needs_teacher and teacher is None:
            raise CgankdInputError(f"KD method {method!r} needs a teacher")

        def term(name: str, weight: str) -> nn.Module | None:
            if self.weights[weight] == 0:
                return None
            built = build_kd_loss(name, task=task, student=student, teacher=teacher,
                                  sample_input=sample_input, n_data=n_data,
                                  options=options.get(name))
            if getattr(built, "needs_data_labels", False):
                if data_labels is None:
                    raise CgankdInputError(f"kd.{name} needs the training labels (data_labels)")
                built.set_data_labels(data_labels)
            return built

        self.kd_term = term(VANILLA_KD, "alpha")
        self.method_term = term(method, "beta")
        self.teacher_table = None  # cgankd.kd.teacher_cache.TeacherTable, set by the trainer

    @property
    def teacher_logits_only(self) -> bool:
        """True when the teacher's outputs alone feed the loss (vanilla KD, no method term):
        then they can come from a precomputed table."""
        return self.needs_teacher and self.method_term is None

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The student's and the terms' parameters (the teacher is not a submodule)."""
        return self.parameters()

    def task_loss(self, s_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.task == CLASSIFICATION:
            return F.cross_entropy(s_out, labels)
        return F.mse_loss(s_out.reshape(-1), labels.reshape(-1).to(s_out.dtype))

    def forward(self, x: torch.Tensor, labels: torch.Tensor,
                rows: torch.Tensor | None = None, views: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss, and each unweighted part plus the total as floats for logging.
        ``rows``: each sample's row in the training set (CRD's bank, the teacher table).

        ``views`` (the augmentation view of each image) lets a teacher table, when one is set,
        stand in for the teacher's forward pass.
        """
        s_out, s_feats = self.student(x, return_features=True)
        parts = {"task": (self.weights["gamma"], self.task_loss(s_out, labels))}
        if self.needs_teacher:
            if self.teacher_table is not None and views is not None:
                t_out, t_feats = self.teacher_table(rows, views).to(s_out.dtype), []
            else:
                self.teacher.eval()
                with torch.no_grad():
                    t_out, t_feats = self.teacher(x, return_features=True)
                t_feats = [f.detach() for f in t_feats]
            for name, weight, term in ((VANILLA_KD, "alpha", self.kd_term),
                                       (self.method, "beta", self.method_term)):
                if term is not None:
                    value = term(s_out, t_out, s_feats, t_feats, labels, rows)
                    parts[name] = (self.weights[weight], value)
        total = sum(weight * value for weight, value in parts.values())
        logged = {name: float(value.detach()) for name, (_, value) in parts.items()}
        logged["total"] = float(total.detach())
        return total, logged
