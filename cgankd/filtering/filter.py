"""Teacher filtering and label replacement of fake samples (METHOD.md section 5).

The teacher scores each fake by its loss against the fake's label; fakes at or above a
rho-quantile cutoff are dropped. Cutoffs are per class (classification, v3) or one global
value (classification v1, regression). Quantiles are torch.quantile's default 'linear'
interpolation: the cutoff for rho over n sorted losses is l[(n-1) rho] interpolated between
neighbours, so with distinct losses 'keep loss < cutoff' keeps the ceil((n-1) rho) lowest
of n (exactly 900 of 1000 at rho = 0.9). All functions are vectorised torch, no loops over samples.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from cgankd.conventions import LabelScale
from cgankd.errors import CgankdInputError


def _check_rho(rho: float) -> None:
    if not 0.0 < rho <= 1.0:
        raise CgankdInputError(f"filter rho must be in (0, 1], got {rho}")


def global_quantile_cutoff(losses: torch.Tensor, rho: float) -> float:
    """The rho-quantile of all losses (classification v1, regression)."""
    _check_rho(rho)
    if losses.numel() == 0:
        raise CgankdInputError("filter cutoff: no losses to take a quantile of")
    return torch.quantile(losses.detach().reshape(-1).float(), rho).item()


def per_class_quantile_cutoffs(losses: torch.Tensor, labels: torch.Tensor, rho: float,
                               num_classes: int) -> torch.Tensor:
    """(K,) cutoffs: for each class, the rho-quantile of the losses of that class's samples (v3)."""
    _check_rho(rho)
    losses = losses.detach().reshape(-1).float()
    labels = labels.reshape(-1).to(losses.device)
    cutoffs = torch.empty(num_classes, device=losses.device)
    for k in range(num_classes):
        class_losses = losses[labels == k]
        if class_losses.numel() == 0:
            raise CgankdInputError(f"filter cutoff: class {k} has no samples to take a quantile of")
        cutoffs[k] = torch.quantile(class_losses, rho)
    return cutoffs


def keep_mask(losses: torch.Tensor, labels: torch.Tensor | None,
              cutoffs: torch.Tensor | float) -> torch.Tensor:
    """Bool mask of the samples to keep: loss < the cutoff of the sample's class.

    cutoffs is (K,) (per class, indexed by labels) or a scalar (global; labels unused).
    """
    losses = losses.reshape(-1)
    if isinstance(cutoffs, torch.Tensor) and cutoffs.dim() > 0:
        if labels is None:
            raise CgankdInputError("filter keep_mask: per-class cutoffs need the labels")
        return losses < cutoffs.to(losses.device)[labels.reshape(-1).long().to(losses.device)]
    return losses < cutoffs


def classification_losses(teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of the teacher against each fake's (GAN) label."""
    return F.cross_entropy(teacher_logits.float(), labels.long(), reduction="none")


def regression_losses(teacher_pred_norm: torch.Tensor, labels_norm: torch.Tensor,
                      label_scale: float) -> torch.Tensor:
    """|clip(y_hat, 0, 1) - y| per sample in original label units (normalised error * scale)."""
    pred = relabel_regression(teacher_pred_norm)
    labels = labels_norm.reshape(-1).to(pred.dtype)
    if pred.numel() != labels.numel():
        raise CgankdInputError(f"regression losses: {pred.numel()} predictions for "
                               f"{labels.numel()} labels")
    return (pred - labels).abs() * label_scale


def relabel_classification(teacher_logits: torch.Tensor) -> torch.Tensor:
    """The teacher's argmax class: the replacement label of v1."""
    return teacher_logits.argmax(dim=1)


def relabel_regression(teacher_pred_norm: torch.Tensor) -> torch.Tensor:
    """The teacher's prediction clipped to the normalised label range [0, 1], as rows (N,)."""
    return teacher_pred_norm.reshape(-1).clamp(0.0, 1.0)


def teacher_scores(outputs: torch.Tensor, labels: np.ndarray, task: str,
                   scale: LabelScale | None) -> tuple[torch.Tensor, np.ndarray]:
    """(per-sample losses, teacher labels) of fakes from the teacher's CPU ``outputs`` for
    them: cross-entropy and argmax, or |clip(y_hat) - y| and y_hat in original units."""
    if task == "classification":
        return (classification_losses(outputs, torch.from_numpy(labels)),
                relabel_classification(outputs).numpy())
    losses = regression_losses(outputs, torch.from_numpy(scale.normalise(labels)), scale.span)
    return losses, scale.predicted(outputs.numpy()).astype(np.float32)


def class_quotas(count: int, num_classes: int) -> np.ndarray:
    """``count`` split over classes as evenly as possible (the first classes get the rest)."""
    quotas = np.full(num_classes, count // num_classes)
    quotas[: count % num_classes] += 1
    return quotas


def per_class_selection(losses: torch.Tensor, labels: np.ndarray, opts: Mapping[str, Any],
                        quotas: np.ndarray, filtering: bool) -> tuple[np.ndarray, list[float]]:
    """Rows kept, in pool order, and the per-class cutoffs (inf without filtering)."""
    cutoffs, rows = [], []
    for k, quota in enumerate(quotas):
        members = np.flatnonzero(labels == k)
        cutoff = float("inf")
        if filtering:
            burnin = int(opts["burnin"])
            cutoff = global_quantile_cutoff(losses[members[:burnin]], float(opts["rho"]))
            if opts.get("burnin_separate", False):
                members = members[burnin:]  # the burn-in set the cutoff; none of it is kept
            members = members[(losses[members] < cutoff).numpy()]
        if len(members) < quota:
            raise CgankdInputError(f"filter: class {k} has {len(members)} fakes left after "
                                   f"filtering, fewer than its quota {quota}; raise "
                                   f"subsample.per_class")
        rows.append(members[:quota])
        cutoffs.append(cutoff)
    return np.sort(np.concatenate(rows)), cutoffs


def select_rows(losses: torch.Tensor, labels: np.ndarray, opts: Mapping[str, Any], task: str,
                count: int, num_classes: int | None,
                rng: np.random.Generator) -> tuple[np.ndarray, list[float], int]:
    """The pool rows one filter pass keeps: exactly ``count``, sorted; the cutoffs; and how
    many rows passed the cutoffs before the draw down to ``count``.

    ``opts`` are checked filter options (mode none: no cutoff). Per-class mode takes each
    class's quota in pool order; the global modes (classification v1, regression) keep every
    row below one cutoff and draw ``count`` of them with ``rng``. The filter_relabel stage and
    the rho selection both call this, so a rho means the same selection in both.
    """
    filtering = opts["mode"] != "none"
    if task == "classification" and opts["mode"] != "global":
        kept, cutoffs = per_class_selection(losses, labels, opts,
                                            class_quotas(count, num_classes), filtering)
        passed = len(labels)
        if filtering:  # the rows below their class's cutoff, burn-in kept apart excluded
            below = (losses < torch.tensor(cutoffs)[torch.from_numpy(labels).long()]).numpy()
            if opts.get("burnin_separate", False):
                for k in range(num_classes):
                    below[np.flatnonzero(labels == k)[:int(opts["burnin"])]] = False
            passed = int(below.sum())
    else:
        cutoffs = [global_quantile_cutoff(losses, float(opts["rho"]))] if filtering \
            else [float("inf")]
        kept = np.flatnonzero((losses < cutoffs[0]).numpy())
        passed = len(kept)
        if len(kept) > count:  # more than needed: draw count of them
            kept = np.sort(rng.choice(kept, size=count, replace=False))
    if len(kept) < count:
        raise CgankdInputError(f"filter: {len(kept)} fakes kept, fewer than fake.count = "
                               f"{count}; enlarge the subsample pool")
    return kept, cutoffs, passed
