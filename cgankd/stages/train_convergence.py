"""The ``train_convergence`` stage: a baseline (the teacher, or a student without KD) retrained
with ``factor`` times its budget and nothing else changed, for the convergence check."""

from collections.abc import Mapping
from typing import Any

from cgankd.stages._training import train_model
from cgankd.train.budget import scaled_budget


def run(*, role: str, recipe: Mapping[str, Any] | None, factor: float, where: str,
        identity: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """``train_model`` for ``role`` with ``recipe``'s budget times ``factor`` (``where``: the
    recipe's config path, for errors); the factor is recorded in the model's identity."""
    return train_model(role=role, recipe=scaled_budget(recipe, factor, where),
                       identity={**(identity or {}), "budget_factor": factor}, **kwargs)
