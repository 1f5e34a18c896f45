"""Build a registered KD term for a task, sized by one probe forward of both nets."""

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from cgankd.errors import CgankdInputError
# Imported for their registrations in KD_LOSSES.
from cgankd.kd import (attention, crd, fitnet, logits, probabilistic,  # noqa: F401
                       relational, similarity, vid)
from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes, check_task
from cgankd.nets.contract import feature_shapes
from cgankd.options import merge_options


def kd_loss_names(task: str) -> list[str]:
    """The registered terms defined for ``task``, sorted."""
    check_task(task)
    return [name for name in KD_LOSSES.names() if task in KD_LOSSES.get(name).tasks]


def loss_class(name: str, task: str) -> type[KDLoss]:
    """The term registered as ``name``; an error naming it if unknown or not for ``task``."""
    check_task(task)
    cls = KD_LOSSES.get(name)
    if task not in cls.tasks:
        raise CgankdInputError(f"KD loss {name!r} does not apply to {task}; "
                               f"for {task} use one of: {', '.join(kd_loss_names(task))}")
    return cls


def loss_options(name: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``name``'s defaults with ``overrides`` applied; unknown keys name ``kd.<name>.<key>``."""
    return merge_options(KD_LOSSES.get(name).DEFAULTS, overrides, f"kd.{name}")


def probe(student: nn.Module, teacher: nn.Module, sample_input: torch.Tensor) -> ProbeShapes:
    s_out, s_feats = feature_shapes(student, sample_input, "student")
    t_out, t_feats = feature_shapes(teacher, sample_input, "teacher")
    return ProbeShapes(s_out, t_out, tuple(s_feats), tuple(t_feats))


def build_kd_loss(name: str, *, task: str, student: nn.Module, teacher: nn.Module,
                  sample_input: torch.Tensor, n_data: int,
                  options: Mapping[str, Any] | None = None) -> KDLoss:
    """The term ``name`` for ``task``, on ``sample_input``'s device.

    Its trainable parts are submodules: pass ``loss.parameters()`` to the optimizer too.
    """
    cls = loss_class(name, task)
    merged = loss_options(name, options)  # before the probe: a typo fails without a forward
    shapes = probe(student, teacher, sample_input)
    loss = cls(task=task, shapes=shapes, n_data=int(n_data), options=merged, where=f"kd.{name}")
    return loss.to(sample_input.device)
