"""The ``train_cgan`` stage's options (``gan.options``): defaults defined once, checked without
torch, so the workflow checks them when it plans the run; ``cgankd.stages.train_cgan`` uses
the same."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice, require_int, require_number
from cgankd.stage_options.names import (DIFFAUG_POLICIES, GAN_BACKBONES, GAN_LOSSES,
                                        GAN_MULTS_RESOLUTIONS, check_known)
from cgankd.stage_options.recipe import RECIPE_DEFAULTS

# ILI pretraining of the CcGAN's label embedding (label_input: ili), cgankd/gan/label_embedding.py.
# The authors' way (github.com/UBCDingXin/cGAN-KD, RC49/CcGAN-based_KD at 75408cd, and the v3
# UTKFace/ and SteeringAngle/ alike): train_net_for_label_embed.py:32 and :143, SGD momentum
# 0.9, weight decay 1e-4, for the regressor and y2h; opts.py:88-96 lr 0.01 for both, x0.1 at
# epochs 60/120 of 200 (regressor) and 150/250/350 of 500 (y2h); y2h trains on the distinct
# training labels (generate_synthetic_data.py:124 and :229), noise std 0.2 (:156).
# The defaults below are the digits' (CPU), chosen by measurement (see ili_optimizer); the
# published experiment files set the authors' values.
ILI_DEFAULTS: dict[str, Any] = {
    "ili_width": 0.25,  # regressor width, fraction of ResNet-34's 64..512 channels (1.0: published)
    "ili_blocks": [3, 4, 6, 3],  # residual blocks per stage: ResNet-34's
    "ili_regressor_epochs": 20,  # epochs of the x -> y regressor (CcGAN: 200)
    "ili_y2h_epochs": 50,  # epochs of y2h over its labels (CcGAN: 500)
    "ili_batch_size": 64,  # regressor's batch (published 256), and y2h's when the next is null
    "ili_y2h_batch_size": None,  # batch of y2h; null: ili_batch_size (published 256 v1, 128 v3)
    # Optimiser of both steps: sgd (published, momentum ili_momentum) | adam (betas 0.9, 0.999).
    # Measured at the digits_angle sizes (300 training images at 30 angles 3 degrees apart,
    # 16 px; the widths and epochs above; 3 seeds; no GAN): y2h's inversion MSE
    # mean (h2y(y2h(y)) - y)^2 on the distinct normalised training labels, and the regressor's
    # validation MSE. adam + all labels (this default): 3.4e-7 +- 1.0e-7 (RMSE 0.05 degrees),
    # regressor 6.3e-3; adam + distinct: 6.1e-5; sgd (the published lr, momentum, decay and
    # schedule) + all: 1.8e-5, regressor 1.2e-2; sgd + distinct, the published way: 2.3e-3
    # +- 0.7e-3 (RMSE 4.3 degrees, more than the label spacing: 50 epochs over 30 labels are
    # 50 steps), and 5.1e-6 (0.2 degrees) at the published 500 y2h epochs. Adam over every
    # label inverts best at these sizes, so the default keeps it.
    "ili_optimizer": "adam",
    "ili_lr": 1e-3,  # learning rate of both steps (published, SGD: 0.01)
    "ili_momentum": 0.9,  # SGD momentum (published 0.9); unused by adam
    "ili_weight_decay": 0.0,  # L2 weight decay of both steps (published 1e-4)
    # lr x ili_lr_decay at each of these fractions of the step's epochs (the lr is set at each
    # epoch's start, as the authors' adjust_learning_rate); [] keeps it constant.
    "ili_regressor_milestones": [],  # published [0.3, 0.6]: epochs 60/120 of 200
    "ili_y2h_milestones": [],  # published [0.3, 0.5, 0.7]: epochs 150/250/350 of 500
    "ili_lr_decay": 0.1,  # published 0.1
    # y2h's training labels: distinct (published: each distinct training label once per epoch)
    # | all (every training image's label, repeats included, so an epoch is N_train labels)
    "ili_y2h_labels": "all",
    "ili_label_noise": 0.2,  # std of the noise added to labels when training y2h (published)
}
ILI_OPTIMIZERS = ("sgd", "adam")
ILI_Y2H_LABELS = ("distinct", "all")

# Defaults: the offline digits config (16 px grayscale, 100-500 images, 2 CPU cores).
# Published CIFAR BigGAN size: g_ch 64, d_ch 64 (multipliers [4, 4, 4] / [4, 4, 4, 4] at 32 px,
# the per-resolution default), dim_z 128, dim_shared 128, batch_size 512, n_dis 4, lr 2e-4 both.
GAN_DEFAULTS: dict[str, Any] = {
    "backbone": "auto",  # GANS key; "auto": biggan for classification, sngan for regression
    "g_ch": 16,  # generator base width; block widths are g_ch * g_mults
    "d_ch": 16,  # discriminator base width
    # Width multipliers (null: models.DEFAULT_G_MULTS / DEFAULT_D_MULTS for the resolution):
    "g_mults": None,  # G: one per upsampling block, 4x4 bottom first
    "d_mults": None,  # D: one per block, image side first
    "dim_z": 64,  # latent size
    "dim_shared": 32,  # biggan's shared class embedding feeding every CBN; 0: per-layer embeddings
    "hier": True,  # biggan: z split over the blocks' CBNs (hierarchical z); not used by nli
    # Resolution G draws at before the data's own resize to `resolution` (null: the data's).
    # The digits are 8x8 scans upsampled to 16 px: a G drawing 8x8 and upsampled exactly as
    # the real images were cannot add detail the real images never have.
    "native_resolution": None,
    "attention_res": None,  # map size of the self-attention block; null: none (sagan: res / 2)
    "iterations": 2000,  # G steps (digits: judge agreement ~97-100 % from 1500 on)
    "batch_size": 64,  # images per D step (real) and per G step (fake)
    "n_dis": 2,  # D steps per G step
    "loss": "hinge",  # GAN_LOSSES key: hinge | vanilla (published CcGAN-SNGAN: vanilla)
    "lr_g": 1e-4,  # Adam learning rate of G (BigGAN CIFAR: 2e-4)
    "lr_d": 4e-4,  # Adam learning rate of D (BigGAN: 2e-4); 1:4 made digits more varied
    "betas": [0.0, 0.999],  # Adam betas of both, as BigGAN uses
    "ema_decay": 0.999,  # EMA generator: ema = decay * ema + (1 - decay) * G
    "ema_start": 1000,  # before this iteration the EMA generator just copies G
    "diffaug": "color,translation,cutout",  # DiffAugment policy; "" disables it
    # Mode-seeking weight (Mao et al., CVPR 2019): the G step draws each label twice with two
    # latents and adds lambda / (mean|G(z1)-G(z2)| / mean|z1-z2| + eps), penalising a G that
    # maps different z of one label to one image. 0 disables it.
    "mode_seeking": 0.0,
    "checkpoint_every": 500,  # iterations between checkpoints (plus one at the end)
    # ... and at most this many seconds of wall time apart: the students' default
    "checkpoint_seconds": RECIPE_DEFAULTS["checkpoint_seconds"],
    "sample_every": 1000,  # iterations between sample sheets in samples/ (0: only the final one)
    # Regression (CcGAN) only:
    "label_input": "nli",  # nli: scalar label (G's first dense layer, D projection); ili: y2h(y)
    "vicinity": "hard",  # hard (HVDL, window kappa) | soft (SVDL, weights exp(-nu d^2))
    "m_kappa": 2.0,  # kappa_base = m_kappa * largest gap between distinct normalised labels
    "sigma": None,  # std of the target-label noise; null: rule of thumb 1.06 std(y) N^(-1/5)
    "kappa": None,  # kappa_base override (soft: nu = 1 / kappa^2); null: rule of thumb
    "vicinity_max_retries": 100,  # redraws of the label noise before an empty vicinity is an error
    # Clip the noisy labels y + eps to [0, 1], D's targets and G's labels alike. The authors'
    # CcGAN scripts leave it off (their clip_label flag); the fakes' window is clipped either way.
    "clip_label": False,
    **ILI_DEFAULTS,
}
TASKS = ("classification", "regression")
LABEL_INPUTS = ("nli", "ili")
VICINITIES = ("hard", "soft")


def _int_list(value: Any, where: str) -> None:
    if value is not None and (not isinstance(value, (list, tuple)) or not value or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise CgankdInputError(f"{where}: must be null or a list of integers >= 1, got {value!r}")


def checked_gan_options(options: Mapping[str, Any] | None, task: str | None = None,
                        where: str = "gan.options") -> dict[str, Any]:
    """GAN_DEFAULTS updated by ``options``, every value checked; "auto" resolved when ``task``
    (classification or regression) is known."""
    opts = merge_options(GAN_DEFAULTS, options, where)
    if task is not None and task not in TASKS:
        raise CgankdInputError(f"unknown task {task!r} in the training split; known: {TASKS}")
    if opts["backbone"] != "auto":
        check_known(opts["backbone"], GAN_BACKBONES, "GAN backbone", f"{where}.backbone")
    elif task is not None:
        opts["backbone"] = "biggan" if task == "classification" else "sngan"
    check_known(opts["loss"], GAN_LOSSES, "GAN loss", f"{where}.loss")
    if not isinstance(opts["diffaug"], str):
        raise CgankdInputError(f"{where}.diffaug: must be a string such as 'color,cutout', got "
                               f"{opts['diffaug']!r}")
    for name in (p.strip() for p in opts["diffaug"].split(",") if p.strip()):
        check_known(name, DIFFAUG_POLICIES, "DiffAugment policy", f"{where}.diffaug")
    for key in ("g_ch", "d_ch", "dim_z", "iterations", "batch_size", "n_dis", "checkpoint_every",
                "vicinity_max_retries", "ili_regressor_epochs", "ili_y2h_epochs",
                "ili_batch_size"):
        require_int(opts[key], f"{where}.{key}", 1)
    for key in ("dim_shared", "ema_start", "sample_every"):
        require_int(opts[key], f"{where}.{key}", 0)
    require_number(opts["mode_seeking"], f"{where}.mode_seeking", 0)
    require_number(opts["checkpoint_seconds"], f"{where}.checkpoint_seconds", 0, low_open=True)
    require_number(opts["ema_decay"], f"{where}.ema_decay", 0, 1, high_open=True)
    for key in ("lr_g", "lr_d", "m_kappa", "ili_width", "ili_lr"):
        require_number(opts[key], f"{where}.{key}", 0, low_open=True)
    require_number(opts["ili_label_noise"], f"{where}.ili_label_noise", 0)
    require_number(opts["ili_weight_decay"], f"{where}.ili_weight_decay", 0)
    require_number(opts["ili_momentum"], f"{where}.ili_momentum", 0, 1, high_open=True)
    require_number(opts["ili_lr_decay"], f"{where}.ili_lr_decay", 0, low_open=True)
    require_choice(opts["ili_optimizer"], ILI_OPTIMIZERS, f"{where}.ili_optimizer")
    require_choice(opts["ili_y2h_labels"], ILI_Y2H_LABELS, f"{where}.ili_y2h_labels")
    if opts["ili_y2h_batch_size"] is not None:
        require_int(opts["ili_y2h_batch_size"], f"{where}.ili_y2h_batch_size", 1)
    for key in ("ili_regressor_milestones", "ili_y2h_milestones"):
        value = opts[key]
        if not isinstance(value, (list, tuple)) or any(
                isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m <= 1
                for m in value):
            raise CgankdInputError(f"{where}.{key}: must be a list of fractions of the epochs "
                                   f"in [0, 1], got {value!r}")
    for key in ("sigma", "kappa"):
        if opts[key] is not None:
            require_number(opts[key], f"{where}.{key}", 0, low_open=True)
    betas = opts["betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2 or any(
            isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1
            for b in betas):
        raise CgankdInputError(f"{where}.betas: must be two numbers in [0, 1), got {betas!r}")
    for key in ("hier", "clip_label"):
        if not isinstance(opts[key], bool):
            raise CgankdInputError(f"{where}.{key}: must be true or false, got {opts[key]!r}")
    require_choice(opts["label_input"], LABEL_INPUTS, f"{where}.label_input")
    require_choice(opts["vicinity"], VICINITIES, f"{where}.vicinity")
    for key in ("g_mults", "d_mults", "ili_blocks"):
        _int_list(opts[key], f"{where}.{key}")
    for key in ("native_resolution", "attention_res"):
        if opts[key] is not None:
            require_int(opts[key], f"{where}.{key}", 1)
    return opts


def power_of_two_at_least_8(value: int) -> bool:
    return isinstance(value, int) and value >= 8 and value & (value - 1) == 0


def check_gan_resolution(resolution: int, opts: Mapping[str, Any], data_where: str = "data",
                         where: str = "gan.options") -> None:
    """The cross-field checks between the data's resolution and the GAN's options."""
    if not power_of_two_at_least_8(resolution):
        raise CgankdInputError(f"{data_where}.resolution: {resolution!r} is not a power of two "
                               f">= 8, which the GAN's 2x upsampling blocks need (or set "
                               f"fake.enabled: false)")
    native = opts["native_resolution"]
    if native is not None and (native > resolution or not power_of_two_at_least_8(native)):
        raise CgankdInputError(f"{where}.native_resolution: {native!r} must be a power of two "
                               f">= 8 and <= {data_where}.resolution {resolution}")
    for key, at in (("g_mults", native or resolution), ("d_mults", resolution)):
        if opts[key] is None and at not in GAN_MULTS_RESOLUTIONS:
            raise CgankdInputError(f"{where}.{key}: no default width multipliers at {at} px "
                                   f"(defaults exist for {list(GAN_MULTS_RESOLUTIONS)}); set it")
