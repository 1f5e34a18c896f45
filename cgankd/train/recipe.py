"""The training recipe: its budget and learning-rate schedule (options: stage_options.recipe).

Two budget protocols, because each answers a different question. ``steps`` gives every variant
the same number of optimizer updates, so a student trained on real + fake data is not credited
with extra training the baseline never got. ``epochs`` is the paper's protocol: the same number
of passes over each variant's *own* training set, so adding fakes adds steps. Either is only a
fair comparison at a budget where the baseline has converged.
"""

from collections.abc import Mapping
from typing import Any

import torch

from cgankd.errors import CgankdInputError
# The options and their checks live torch-free, so the workflow checks them at plan time.
from cgankd.stage_options.recipe import (BUDGETS, RECIPE_DEFAULTS, SELECTIONS,  # noqa: F401
                                         checked_recipe)


def resolved_steps(recipe: Mapping[str, Any], n_train: int) -> int:
    """The run's optimizer steps: ``steps``, or ``ceil(epochs * n_train / batch_size)``.

    ``n_train`` is the variant's whole training set (real + fakes), so under budget "epochs"
    a variant with fakes trains longer. Rounded up, so every image is drawn at least ``epochs``
    times; a set smaller than a batch makes batches of the whole set (``BatchRows``).
    """
    if recipe["budget"] == "steps":
        return int(recipe["steps"])
    if int(n_train) < 1:
        raise CgankdInputError("budget 'epochs' needs a non-empty training set")
    batch = min(int(recipe["batch_size"]), int(n_train))
    return -(-int(recipe["epochs"]) * int(n_train) // batch)  # integer ceil: exact at any size


def lr_lambda(recipe: Mapping[str, Any], steps: int):
    """Step -> lr multiplier for LambdaLR: warm-up, then multistep or cosine decay.

    ``steps`` is ``resolved_steps``: milestones and the cosine period are fractions of it.
    """
    steps, warmup = int(steps), int(recipe["warmup_steps"])
    milestones = sorted(int(round(float(m) * steps)) for m in recipe["milestones"])
    decay = float(recipe["lr_decay"])
    cosine = recipe["schedule"] == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cosine:
            progress = (step - warmup) / max(1, steps - warmup)
            return 0.5 * (1.0 + torch.cos(torch.tensor(progress * torch.pi)).item())
        return decay ** sum(step >= m for m in milestones)

    return factor
