"""Registry names the workflow checks at plan time, without importing torch.

The registries themselves (``cgankd.nets.zoo.NETS``, ``cgankd.kd.base.KD_LOSSES``,
``cgankd.data.DATASETS``, ``cgankd.gan.models.GANS``, ``cgankd.gan.losses.GAN_LOSSES``,
``cgankd.gan.diffaug.POLICIES``) live beside torch code. These tables list what a config may
name and which option keys each entry takes; tests/test_plan_checks.py asserts they equal the
real registries, so adding an entry there without adding it here fails a test.
"""

import re
from collections.abc import Iterable
from typing import Any

from cgankd.errors import CgankdInputError

# net registry key -> the option keys its config `kwargs` may set (the factory's keyword-only
# parameters). The fixed-depth families take none.
NET_OPTIONS: dict[str, tuple[str, ...]] = {
    "cnn": ("width", "blocks"),
    "mobilenetv2": ("width_mult",),
    **{name: () for name in (
        "densenet121", "densenet_bc_100_12", "resnet8", "resnet14", "resnet18", "resnet20",
        "resnet32", "resnet34", "resnet44", "resnet50", "resnet56", "resnet110", "resnet8x4",
        "resnet32x4", "shufflenetv1", "shufflenetv2", "vgg8", "vgg11", "vgg13", "vgg16",
        "vgg19", "wrn_16_2", "wrn_40_1", "wrn_40_2")},
}

CLASSIFICATION, REGRESSION = "classification", "regression"
BOTH = (CLASSIFICATION, REGRESSION)

# KD term registry key -> (tasks it is defined for, its option keys under kd.options.<term>).
KD_TERMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "kd": (BOTH, ("temperature",)),
    "at": (BOTH, ("p",)),
    "fitnet": (BOTH, ("student_stage", "teacher_stage", "batchnorm")),
    "sp": (BOTH, ()),
    "vid": (BOTH, ("init_variance", "eps")),
    "rkd": (BOTH, ("distance_weight", "angle_weight")),
    "pkt": (BOTH, ("eps",)),
    "crd": ((CLASSIFICATION,), ("feat_dim", "nce_k", "nce_t", "nce_m", "negatives")),
}

# dataset registry key -> (task: classification, regression or "any", option keys of
# data.options).
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "digits": (CLASSIFICATION, ()),
    "digits_angle": (REGRESSION, ("n_train_angles", "images_per_angle", "val_per_angle",
                                  "n_test", "test_source_fraction", "max_angle")),
    "cifar10": (CLASSIFICATION, ()),
    "cifar100": (CLASSIFICATION, ()),
    "tinyimagenet": (CLASSIFICATION, ("num_classes",)),
    "imagenet100": (CLASSIFICATION, ("num_classes",)),
    "rc49": (REGRESSION, ()),
    "utkface": (REGRESSION, ()),
    "steering_angle": (REGRESSION, ()),
    "h5": ("any", ("task", "num_classes", "label_unit", "label_range")),
    "imagefolder": (CLASSIFICATION, ("mode", "extensions")),
}

GAN_BACKBONES = ("biggan", "sngan", "sagan")
GAN_LOSSES = ("hinge", "vanilla")
DIFFAUG_POLICIES = ("color", "translation", "cutout")
GAN_MULTS_RESOLUTIONS = (8, 16, 32, 64, 128)  # resolutions with default width multipliers

# A name that becomes a path part (experiment, student net, KD method, study): letters, digits,
# '_', '.', '-', starting with a letter or digit, so it can be neither '..' nor hold a '/'.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_known(name: Any, known: Iterable[str], kind: str, where: str) -> str:
    """``name`` if it is one of ``known``; otherwise one line naming ``where`` and the choices."""
    known = list(known)
    if not isinstance(name, str) or name not in known:
        raise CgankdInputError(f"{where}: unknown {kind} {name!r}; known: "
                               f"{', '.join(sorted(known))}")
    return name


def check_plain_name(name: Any, where: str) -> str:
    """``name`` if it is safe as one path part under results/; one line naming ``where`` if not."""
    if not isinstance(name, str) or not PLAIN_NAME.match(name) or ".." in name:
        raise CgankdInputError(f"{where}: {name!r} is not a plain name (letters, digits, '_', "
                               f"'.', '-', starting with a letter or digit, no '..'); it "
                               f"becomes a folder under results/")
    return name
