"""The ``fit_dre`` stage's options (``dre.options``): defaults defined once, checked without
torch; ``cgankd.stages.fit_dre`` and ``cgankd.dre.fit`` use the same."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice, require_int, require_number
from cgankd.stage_options.data import check_data
from cgankd.stage_options.fake import SUBSAMPLE_DEFAULTS
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
    # Regression only (classification ignores these three and real_batches). The authors' DR
    # fit (UBCDingXin/cDR-RS RC-49/cDR-RS/train_cdre.py; UTKFace/cDR-RS/train_cdre.py the
    # same 14-15 lines later): for each real label y the
    # fake is generated at y' ~ U[y - kappa, y + kappa] (train_cdre.py:138-151, not clipped:
    # 143-144 commented out; here the window is clipped to [0, 1] as the sampler's is), fakes
    # whose autoencoder label falls outside the window are regenerated up to reg_niters rounds
    # (164-182) and those still outside are dropped with their real partners (184-188), and
    # psi of both is conditioned on the real y (204-206). kappa is one value, --dre_kappa,
    # shared by the fit (main.py:370) and the sampler (main.py:228-229): -6 = 6 * the largest
    # label gap (main.py:169-177, scripts/run_train.sh DRE_KAPPA=-6). cGAN-KD's own scripts
    # leave --dre_kappa at 0 (UTKFace/opts.py:145, SteeringAngle/opts.py:139): no window in
    # the fit (train_cdre.py:209-213 fakes at y exactly) nor in the sampler. So the fit's
    # window is the sampler's: the workflow fills label_window and zeta_mult from
    # subsample.options unless dre.options.fit sets them (with_sampler_window); the values
    # here are for a stage called directly. label_window false: fakes at y exactly (before).
    # cGAN-KD v1's RC-49 fit is another scheme, not implemented: target labels drawn among the
    # test angles, reals from the CcGAN vicinity with soft weights (commit 75408cd,
    # RC49/CcGAN-based_KD/train_cdre.py:102-212).
    "label_window": True,
    "zeta_mult": 6.0,  # zeta = zeta_mult * kappa_base, as subsample.options.zeta_mult
    # rounds regenerating the fakes outside the window before they are dropped (published:
    # --dre_adjust_niters 200, RC-49/cDR-RS/scripts/run_train.sh and UTKFace's)
    "window_retries": 200,
    # Real batches, regression. "balanced" (published): each batch draws batch_size labels
    # uniformly (with replacement) among the distinct training labels, then for each an image
    # uniformly among those with that label; len(train) // batch_size such batches an epoch
    # (cDR-RS RC-49/cDR-RS/train_cdre.py:108-122; cGAN-KD UTKFace/train_cdre.py:125-139).
    # "permutation": a random permutation of the training set split into batches (this
    # package before 2026-11; always so for classification).
    "real_batches": "balanced",
}

FAKE_SOURCES = ("on_the_fly", "bank")
REAL_BATCHES = ("balanced", "permutation")
SAMPLER_WINDOW = ("label_window", "zeta_mult")  # fit keys that default to subsample.options'


def with_sampler_window(options: Mapping[str, Any] | None,
                        subsample: Mapping[str, Any] | None) -> dict[str, Any]:
    """dre.options with fit.label_window and fit.zeta_mult taken from subsample.options (its
    defaults filled in) where dre.options.fit does not set them: the fit_dre rule's options,
    so the sampler's window reaches the fit through params and reruns it when it changes."""
    options = dict(options or {})
    fit = options.get("fit")
    fit = dict(fit) if isinstance(fit, Mapping) else fit
    sampler = {**SUBSAMPLE_DEFAULTS, **(subsample or {})}
    if isinstance(fit, dict) or fit is None:
        options["fit"] = {**{k: sampler[k] for k in SAMPLER_WINDOW}, **(fit or {})}
    return options


def fit_dre_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fit_dre rule's options: dre.options, with the sampler's window for regression
    (classification has no window: its options stay as written, so its fit does not rerun)."""
    task, _ = check_data(config["data"])
    if task == "classification":
        return dict(config["dre"]["options"] or {})
    return with_sampler_window(config["dre"]["options"], config["subsample"]["options"])


DRE_DEFAULTS: dict[str, Any] = {
    "extractor_width": 64,  # ResNet-34 trunk / autoencoder base width (published: 64)
    "feat_shape": None,  # (C, H, W) of h; null = the images' own shape, as published
    "extractor_recipe": {},  # trainer recipe overrides (cgankd/stage_options/recipe.py)
    # The extractor's optimiser. null: the recipe's SGD (momentum, nesterov), as cGAN-KD v3
    # trains the sparse autoencoder (UTKFace/train_sparseAE.py:68, SteeringAngle/:60 at
    # 8fcb117). {name: adam, betas: [b1, b2]}: Adam (L2 weight decay, as torch.optim.Adam)
    # with the recipe's lr, weight_decay and schedule, as cGAN-KD v1 (RC49/ and UTKFace/
    # CcGAN-based_KD/train_sparseAE.py:42 and :49 at 75408cd: lr 0.01, betas (0.5, 0.999),
    # wd 1e-4); the recipe's momentum and nesterov are then unused. {name: sgd} = null.
    # Only the extractor's training reads it: the shared recipe defaults stay as they are.
    "extractor_optimizer": None,
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


EXTRACTOR_OPTIMIZERS = ("sgd", "adam")
# dre.options.extractor_optimizer's keys; betas are Adam's (published (0.5, 0.999), see above)
EXTRACTOR_OPTIMIZER_DEFAULTS: dict[str, Any] = {"name": "sgd", "betas": (0.5, 0.999)}


def checked_extractor_optimizer(value: Any, where: str) -> dict[str, Any] | None:
    """The extractor's optimiser, checked: None (the recipe's SGD) or {name, betas}."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CgankdInputError(f"{where}: must be null (the recipe's SGD) or a mapping "
                               f"{{name: {' | '.join(EXTRACTOR_OPTIMIZERS)}, betas}}, got "
                               f"{value!r}")
    opts = merge_options(EXTRACTOR_OPTIMIZER_DEFAULTS, value, where)
    require_choice(opts["name"], EXTRACTOR_OPTIMIZERS, f"{where}.name")
    _check_betas(opts["betas"], f"{where}.betas")
    return opts


def _check_betas(betas: Any, where: str) -> None:
    if not isinstance(betas, (list, tuple)) or len(betas) != 2 or any(
            isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1
            for b in betas):
        raise CgankdInputError(f"{where}: must be two numbers in [0, 1), got {betas!r}")


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
    require_choice(opts["real_batches"], REAL_BATCHES, f"{where}.real_batches")
    if not isinstance(opts["label_window"], bool):
        raise CgankdInputError(f"{where}.label_window: must be true or false, got "
                               f"{opts['label_window']!r}")
    require_number(opts["zeta_mult"], f"{where}.zeta_mult", 0, low_open=True)
    require_int(opts["window_retries"], f"{where}.window_retries", 0)
    for key in ("lr", "gamma"):
        require_number(opts[key], f"{where}.{key}", 0, low_open=True)
    for key in ("weight_decay", "lam"):
        require_number(opts[key], f"{where}.{key}", 0)
    _check_betas(opts["betas"], f"{where}.betas")
    milestones = opts["milestones"]
    if not isinstance(milestones, (list, tuple)) or any(
            isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in milestones):
        raise CgankdInputError(f"{where}.milestones: must be a list of epochs (integers >= 0), "
                               f"got {milestones!r}")
    return opts


# The options that make the feature extractor alone (architecture, loss, training); the
# quality stage's own extractor (quality.extractor) takes these and no others.
EXTRACTOR_KEYS = ("extractor_width", "feat_shape", "extractor_recipe", "extractor_optimizer",
                  "ae_sparsity", "ae_reg_weight")


def _check_extractor_keys(opts: dict[str, Any], where: str) -> None:
    """Check and normalise, in place, the EXTRACTOR_KEYS of merged options."""
    opts["extractor_recipe"] = checked_recipe(opts["extractor_recipe"],
                                              f"{where}.extractor_recipe")
    opts["extractor_optimizer"] = checked_extractor_optimizer(
        opts["extractor_optimizer"], f"{where}.extractor_optimizer")
    require_int(opts["extractor_width"], f"{where}.extractor_width", 1)
    for key in ("ae_sparsity", "ae_reg_weight"):
        require_number(opts[key], f"{where}.{key}", 0)
    _ints(opts["feat_shape"], f"{where}.feat_shape", 3)


def checked_extractor_options(options: Mapping[str, Any] | None,
                              where: str = "quality.extractor") -> dict[str, Any]:
    """The EXTRACTOR_KEYS of DRE_DEFAULTS updated by ``options``; other keys raise."""
    opts = merge_options({k: DRE_DEFAULTS[k] for k in EXTRACTOR_KEYS}, options, where)
    _check_extractor_keys(opts, where)
    return opts


def checked_dre_options(options: Mapping[str, Any] | None,
                        where: str = "dre.options") -> dict[str, Any]:
    opts = merge_options(DRE_DEFAULTS, options, where)
    opts["fit"] = checked_fit_options(opts["fit"], f"{where}.fit")
    _check_extractor_keys(opts, where)
    for key in ("batch_size", "val_fakes_per_image"):
        require_int(opts[key], f"{where}.{key}", 1)
    require_number(opts["dr_dropout"], f"{where}.dr_dropout", 0, 1, high_open=True)
    _ints(opts["dr_hidden"], f"{where}.dr_hidden")
    return opts
