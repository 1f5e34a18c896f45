"""The training recipe: every optimisation setting, defined once, checked on use.

Budgets are optimizer steps, not epochs: a student trained on real + fake data must get the
same number of updates as the baseline it is compared with, or the comparison measures the
budget instead of the method.
"""

from collections.abc import Mapping
from typing import Any

import torch

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options

RECIPE_DEFAULTS: dict[str, Any] = {
    "steps": 2000,  # optimizer steps (the shared budget of every compared variant)
    "batch_size": 64,
    "lr": 0.05,  # METHOD.md: 0.05 for CIFAR teachers, 0.01 for MobileNetV2/ShuffleNets
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "nesterov": False,
    "schedule": "multistep",  # "multistep" (x lr_decay at each milestone) or "cosine"
    "milestones": [0.625, 0.75, 0.875],  # fractions of steps: 150/180/210 of 240 epochs (v3)
    "lr_decay": 0.1,
    "warmup_steps": 0,  # linear warm-up from 0, helps large-lr runs of deep nets
    "crop_pad": 4,  # random-crop padding in pixels (4 at 32 px, as on CIFAR); 0 = off
    "flip": True,  # horizontal flips; off where they change the label (digits, angles)
    "eval_every": 200,  # steps between validation passes (best-on-val checkpoint selection)
    "checkpoint_every": 500,  # steps between resumable checkpoints
    "eval_batch_size": 512,
}


def checked_recipe(overrides: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    recipe = merge_options(RECIPE_DEFAULTS, overrides, where)
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


def lr_lambda(recipe: Mapping[str, Any]):
    """Step -> lr multiplier for LambdaLR: warm-up, then multistep or cosine decay."""
    steps, warmup = int(recipe["steps"]), int(recipe["warmup_steps"])
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
