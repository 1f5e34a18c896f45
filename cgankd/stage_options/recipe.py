"""The training recipe's options: defaults defined once, checked without torch.

``cgankd.train.recipe`` re-exports these and adds the parts that need torch (the schedule).
Two budget protocols, because each answers a different question. ``steps`` gives every variant
the same number of optimizer updates, so a student trained on real + fake data is not credited
with extra training the baseline never got. ``epochs`` is the paper's protocol: the same number
of passes over each variant's *own* training set, so adding fakes adds steps.
"""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice, require_int, require_number

BUDGETS = ("steps", "epochs")
SELECTIONS = ("best", "last")
SCHEDULES = ("multistep", "cosine")

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
    # ... and at most this many seconds of wall time apart, so a kill, or a run shorter than
    # checkpoint_every, loses at most that much (cgankd/train/resume.py)
    "checkpoint_seconds": 600,
    "eval_batch_size": 512,
    # Share of each batch drawn from the real images when fakes are added (null: uniform over
    # real + fakes, as the paper). The fakes are worse data than the real images they came
    # from; mixed uniformly, 5,000 fakes beside 500 real images fill 91 % of every batch.
    "real_fraction": None,
    # Vanilla KD reads the teacher's outputs per (image, augmentation view) from a table
    # computed once (cgankd/kd/teacher_cache.py): "auto" when that costs fewer teacher passes
    # than the run and fits in 512 MiB; true/false force it. Same values up to float rounding.
    "teacher_cache": "auto",
}


def checked_recipe(overrides: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """RECIPE_DEFAULTS updated by ``overrides``; every value checked, errors name ``where.key``."""
    recipe = merge_options(RECIPE_DEFAULTS, overrides, where)
    for key, allowed in (("budget", BUDGETS), ("selection", SELECTIONS)):
        require_choice(recipe[key], allowed, f"{where}.{key}")
    if not (recipe["teacher_cache"] == "auto" or isinstance(recipe["teacher_cache"], bool)):
        raise CgankdInputError(f"{where}.teacher_cache: {recipe['teacher_cache']!r} is not "
                               f"auto, true or false")
    epochs = recipe["epochs"]
    if recipe["budget"] == "epochs" and (isinstance(epochs, bool) or not isinstance(epochs, int)
                                         or epochs < 1):
        raise CgankdInputError(f"{where}.epochs: budget 'epochs' needs an integer >= 1, got "
                               f"{epochs!r}")
    if epochs is not None:
        require_int(epochs, f"{where}.epochs", 1)
    require_choice(recipe["schedule"], SCHEDULES, f"{where}.schedule")
    for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "eval_batch_size"):
        require_int(recipe[key], f"{where}.{key}", 1)
    for key in ("warmup_steps", "crop_pad"):
        require_int(recipe[key], f"{where}.{key}", 0)
    for key in ("lr", "momentum", "weight_decay", "lr_decay"):
        require_number(recipe[key], f"{where}.{key}", 0)
    fraction = recipe["real_fraction"]
    if fraction is not None:
        require_number(fraction, f"{where}.real_fraction", 0, 1, low_open=True, high_open=True)
        if not 0 < round(fraction * recipe["batch_size"]) < recipe["batch_size"]:
            raise CgankdInputError(f"{where}.real_fraction: {fraction} of a batch of "
                                   f"{recipe['batch_size']} leaves no real or no fake image in it")
    require_number(recipe["checkpoint_seconds"], f"{where}.checkpoint_seconds", 0, low_open=True)
    for key in ("flip", "nesterov"):
        if not isinstance(recipe[key], bool):
            raise CgankdInputError(f"{where}.{key}: must be true or false, got {recipe[key]!r}")
    milestones = recipe["milestones"]
    if (not isinstance(milestones, (list, tuple))
            or any(isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m < 1
                   for m in milestones)):
        raise CgankdInputError(f"{where}.milestones: fractions of the step budget in (0, 1), "
                               f"got {milestones!r}")
    return recipe
