"""The ``fit_dre`` stage's options (``dre.options``): defaults defined once, checked without
torch; ``cgankd.stages.fit_dre`` and ``cgankd.dre.fit`` use the same."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice, require_int, require_number
from cgankd.stage_options.recipe import checked_recipe

# The density-ratio fit (cgankd/dre/fit.py), dre.options.fit.
FIT_DEFAULTS: dict[str, Any] = {
    "epochs": 200,                # published cDR-RS setting
    "lr": 1e-4,                   # Adam learning rate, published
    "betas": (0.5, 0.999),        # Adam betas, published
    "weight_decay": 1e-4,         # published
    "milestones": (80, 150),      # epochs at which lr is multiplied by gamma, published
    "gamma": 0.1,                 # lr decay factor at each milestone
    "lam": 0.01,                  # penalty weight of the loss: 0.01 (v3) or 1e-3 (v1)
    # Epochs between held-out SP evaluations for model selection (not published: the published
    # fit keeps the last epoch, fine with 50k real images, not with 200); 0 = keep the last.
    # Without held-out data the last epoch is kept too.
    "val_every": 10,
    # Where each step's fakes come from. "on_the_fly" (published): generated at the batch's
    # labels every step, a generator and an extractor forward per step (90 % of the fit's
    # time on the digits default). "bank": bank_per_real fakes per real training image are
    # made once, at that image's label, before the fit (from their own seeded stream, so a
    # resumed fit re-makes the same bank); each step draws its fakes from the bank, uniformly
    # among those at each real sample's label. The bank holds bank_per_real x N_real feature
    # vectors in memory.
    "fakes": "on_the_fly",
    "bank_per_real": 10,
}

FAKE_SOURCES = ("on_the_fly", "bank")

DRE_DEFAULTS: dict[str, Any] = {
    "extractor_width": 64,  # ResNet-34 trunk / autoencoder base width (published: 64)
    "feat_shape": None,  # (C, H, W) of h; null = the images' own shape, as published
    "extractor_recipe": {},  # trainer recipe overrides (cgankd/stage_options/recipe.py)
    "ae_sparsity": 1e-3,  # autoencoder: weight of mean(h), the sparsity term
    "ae_reg_weight": 1.0,  # autoencoder: weight of the regression head's MSE
    "dr_hidden": None,  # DR MLP widths; null = published (2048..128 classes, 1024..64 regression)
    "dr_dropout": 0.5,
    "batch_size": 256,  # real (and as many fake) samples per DR step
    # Held-out selection (dre.fit.val_every): fakes per validation image, drawn once at the
    # validation labels; more fakes make the held-out SP less noisy at a small cost.
    "val_fakes_per_image": 5,
    "fit": {},  # DR fit overrides (FIT_DEFAULTS: epochs, lr, betas, lam, ...)
}


def _ints(value: Any, where: str, length: int | None = None) -> None:
    if value is None:
        return
    if (not isinstance(value, (list, tuple)) or not value
            or (length is not None and len(value) != length)
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        size = f"{length} " if length else ""
        raise CgankdInputError(f"{where}: must be null or a list of {size}integers >= 1, got "
                               f"{value!r}")


def checked_fit_options(options: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    opts = merge_options(FIT_DEFAULTS, options, where)
    require_int(opts["epochs"], f"{where}.epochs", 1)
    require_int(opts["val_every"], f"{where}.val_every", 0)
    require_int(opts["bank_per_real"], f"{where}.bank_per_real", 1)
    require_choice(opts["fakes"], FAKE_SOURCES, f"{where}.fakes")
    for key in ("lr", "gamma"):
        require_number(opts[key], f"{where}.{key}", 0, low_open=True)
    for key in ("weight_decay", "lam"):
        require_number(opts[key], f"{where}.{key}", 0)
    betas = opts["betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2 or any(
            isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1
            for b in betas):
        raise CgankdInputError(f"{where}.betas: must be two numbers in [0, 1), got {betas!r}")
    milestones = opts["milestones"]
    if not isinstance(milestones, (list, tuple)) or any(
            isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in milestones):
        raise CgankdInputError(f"{where}.milestones: must be a list of epochs (integers >= 0), "
                               f"got {milestones!r}")
    return opts


def checked_dre_options(options: Mapping[str, Any] | None,
                        where: str = "dre.options") -> dict[str, Any]:
    opts = merge_options(DRE_DEFAULTS, options, where)
    opts["fit"] = checked_fit_options(opts["fit"], f"{where}.fit")
    opts["extractor_recipe"] = checked_recipe(opts["extractor_recipe"],
                                              f"{where}.extractor_recipe")
    for key in ("extractor_width", "batch_size", "val_fakes_per_image"):
        require_int(opts[key], f"{where}.{key}", 1)
    for key in ("ae_sparsity", "ae_reg_weight"):
        require_number(opts[key], f"{where}.{key}", 0)
    require_number(opts["dr_dropout"], f"{where}.dr_dropout", 0, 1, high_open=True)
    _ints(opts["feat_shape"], f"{where}.feat_shape", 3)
    _ints(opts["dr_hidden"], f"{where}.dr_hidden")
    return opts
