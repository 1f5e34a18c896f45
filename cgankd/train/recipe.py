"""The training recipe: every optimisation setting, defined once, checked on use.

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
from cgankd.options import merge_options

BUDGETS = ("steps", "epochs")
SELECTIONS = ("best", "last")

RECIPE_DEFAULTS: dict[str, Any] = {
    "budget": "steps",  # "steps": `steps` updates for every variant; "epochs": `epochs` passes
    "steps": 2000,  # optimizer steps under budget "steps" (the same for every compared variant)
    "epochs": None,  # passes over the variant's own training set; required by budget "epochs"
    # "best": the best validation score (ties: lower validation loss, then the later step);
    # "last": the final weights, as the paper evaluates. Kept "best" until measured otherwise.
    "selection": "best",
    "batch_size": 64,
    "lr": 0.05,  # METHOD.md: 0.05 for CIFAR teachers, 0.01 for MobileNetV2/ShuffleNets
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "nesterov": False,
    "schedule": "multistep",  # "multistep" (x lr_decay at each milestone) or "cosine"
    "milestones": [0.625, 0.75, 0.875],  # fractions of the resolved steps: 150/180/210 of 240
    "lr_decay": 0.1,
    "warmup_steps": 0,  # linear warm-up from 0, helps large-lr runs of deep nets
    "crop_pad": 4,  # random-crop padding in pixels (4 at 32 px, as on CIFAR); 0 = off
    "flip": True,  # horizontal flips; off where they change the label (digits, angles)
    "eval_every": 200,  # steps between validation passes (best-on-val checkpoint selection)
    "checkpoint_every": 500,  # steps between resumable checkpoints
    "eval_batch_size": 512,
    # Vanilla KD reads the teacher's outputs per (image, augmentation view) from a table
    # computed once (cgankd/kd/teacher_cache.py): "auto" when that costs fewer teacher passes
    # than the run and fits in 512 MiB; true/false force it. Same values up to float rounding.
    "teacher_cache": "auto",
}


def checked_recipe(overrides: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    recipe = merge_options(RECIPE_DEFAULTS, overrides, where)
    for key, allowed in (("budget", BUDGETS), ("selection", SELECTIONS)):
        if recipe[key] not in allowed:
            raise CgankdInputError(f"{where}.{key}: {recipe[key]!r} is not one of "
                                   f"{', '.join(allowed)}")
    if not (recipe["teacher_cache"] == "auto" or isinstance(recipe["teacher_cache"], bool)):
        raise CgankdInputError(f"{where}.teacher_cache: {recipe['teacher_cache']!r} is not "
                               f"auto, true or false")
    epochs = recipe["epochs"]
    if recipe["budget"] == "epochs" and (isinstance(epochs, bool) or not isinstance(epochs, int)
                                         or epochs < 1):
        raise CgankdInputError(f"{where}.epochs: budget 'epochs' needs an integer >= 1, got "
                               f"{epochs!r}")
    if recipe["schedule"] not in ("multistep", "cosine"):
        raise CgankdInputError(f"{where}.schedule: {recipe['schedule']!r} is not multistep or "
                               f"cosine")
    for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "eval_batch_size"):
        if int(recipe[key]) < 1:
            raise CgankdInputError(f"{where}.{key}: must be >= 1, got {recipe[key]}")
    if any(not 0 < float(m) < 1 for m in recipe["milestones"]):
        raise CgankdInputError(f"{where}.milestones: fractions of the step budget in (0, 1), "
                               f"got {recipe['milestones']}")
    return recipe


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
