"""The inputs of the compute estimate that are not nets: the config as the pipeline resolves it,
and the split sizes each dataset gives.

The config is read as the workflow reads it (rules/common.smk): each ``--configfile`` resolved
with its ``base:`` chain (cgankd.config_files), merged in order, checked (schema, then the
plan-time checks, ``cgankd.stage_options.plan.config_error``) and the schema's defaults filled.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgankd.config import load_schema
from cgankd.config_files import deep_merge, load_config_file
from cgankd.errors import CgankdInputError
from cgankd.stage_options.plan import config_error, fill_kd_teacher, with_schema_defaults

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"  # the Snakefile's config without --configfile

# The estimate's assumptions, defined once (cgankd/report/compute_estimate.py uses them).
LABEL = "estimate, not measured"
# NVIDIA H200 (SXM) bf16 dense tensor-core peak, datasheet: 1,979 TFLOPS with sparsity, so
# ~989 dense. Measured throughput is what calibrates this estimate; none is measured yet.
H200_BF16_DENSE_TFLOPS = 989.0
# Sustained share of that peak. ~35 % is typical of ResNet-size convnets in bf16 at large
# batch; the small 32-64 px nets here at batch 64-128 reach less, so the hours are a floor.
DEFAULT_UTILISATION = 0.35
BACKWARD_FACTOR = 2.0  # backward ~ 2x forward: gradients of the activations and the weights
# cDR-RS acceptance 1/M when the config gives none: half the proposals are kept.
DEFAULT_ACCEPTANCE = 0.5


def resolve_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config ``snakemake --configfile paths...`` runs (no paths: config/config.yaml)."""
    paths = list(paths) or [DEFAULT_CONFIG]
    for path in paths:
        if not Path(path).is_file():
            raise CgankdInputError(f"{path}: config file not found (--configfile)")
    config: dict[str, Any] = {}
    for path in paths:  # Snakemake's own --configfile merge (cgankd.config_files.deep_merge)
        config = deep_merge(config, load_config_file(path))
    schema = load_schema(SCHEMA)
    problem = config_error(config, schema)
    if problem:
        raise CgankdInputError(f"{paths[-1]}: {problem}")
    config = with_schema_defaults(config, schema)
    fill_kd_teacher(config)  # as rules/common.smk
    return config


@dataclass(frozen=True)
class Sizes:
    """Images per split, and the images' shape and label space."""

    train: int
    val: int
    test: int
    channels: int
    resolution: int
    classes: int | None  # None: regression
    note: str  # where the numbers come from
    # distinct test labels (regression), the pool size of subsample's label_grid test_labels;
    # None: at most one per test image
    test_labels: int | None = None


# Source sizes: (train pool, test, channels, classes or None, whether prepare_data carves the
# validation split from the pool, note). Test and validation sets only cost forward passes.
SOURCES: dict[str, tuple[int, int, int, int | None, bool, str]] = {
    # sklearn's load_digits: 1,797 8x8 scans; prepare_data carves test, val and train from it
    "digits": (1797, 0, 1, 10, True, "sklearn digits, 1,797 images"),
    "cifar10": (50000, 10000, 3, 10, True, "CIFAR-10 50k train / 10k test"),
    "cifar100": (50000, 10000, 3, 100, True, "CIFAR-100 50k train / 10k test"),
    "tinyimagenet": (100000, 10000, 3, 200, True,
                     "Tiny-ImageNet 100k train / 10k official val as test"),
    # The authors' index lists give val; train is the upper bound the configs budget with
    # (config/experiments/utkface_v1.yaml: 15,149 indx_train rows); test assumed 1/4 of it.
    "utkface": (15149, 3787, 3, None, False, "UTKFace: 15,149 train (upper bound), test ~1/4"),
    # 12,271 images, 80 % in the train table (config/experiments/steering_angle_v3.yaml)
    "steering_angle": (9817, 2454, 3, None, True, "Steering Angle 12,271 images, 80/20"),
}
RC49_ANGLES = 450  # v1 RC-49: odd-decimal angles 0.1 ... 89.9 (METHOD.md section 1)
RC49_CHAIRS = 49  # chair types: the test split is bounded by 450 angles x 49 chairs
RC49_PER_ANGLE = 25  # images per angle when the file name does not say (RC-49_64x64_25.h5)
RC49_ALL_ANGLES = 899  # RC-49's yaw angles 0.1 ... 89.9: the most distinct test labels


def _rc49(data: Mapping[str, Any]) -> tuple[int, int, int, int | None, bool, str]:
    found = re.search(r"_(\d+)\.h5$", str(data.get("root") or ""))
    per_angle = int(found.group(1)) if found else RC49_PER_ANGLE
    return (RC49_ANGLES * per_angle, RC49_ANGLES * RC49_CHAIRS, 3, None, False,
            f"RC-49 v1: {RC49_ANGLES} angles x {per_angle} (upper bound), test <= "
            f"{RC49_ANGLES * RC49_CHAIRS:,}")


def split_sizes(config: Mapping[str, Any]) -> Sizes:
    """The split sizes prepare_data makes from ``config['data']`` (cgankd/data/prepare.py's
    carve order: test, then validation, then train_per_class), from the known source sizes."""
    data = config["data"]
    name = data["dataset"]
    options = data.get("options") or {}
    if name == "digits_angle":
        from cgankd.data.digits import DIGITS_ANGLE_DEFAULTS  # numpy only
        opt = {**DIGITS_ANGLE_DEFAULTS, **options}
        angles = int(opt["n_train_angles"])
        return Sizes(angles * int(opt["images_per_angle"]), angles * int(opt["val_per_angle"]),
                     int(opt["n_test"]), 1, int(data["resolution"]), None,
                     "digits_angle: from data.options")
    if name == "rc49":
        source = _rc49(data)
    elif name in SOURCES:
        source = SOURCES[name]
    else:
        raise CgankdInputError(f"data.dataset: {name!r} has no known size for the estimate "
                               f"(known: {', '.join(sorted([*SOURCES, 'rc49', 'digits_angle']))})")
    pool, test, channels, classes, carves_val, note = source
    if name == "tinyimagenet" and options.get("num_classes"):
        classes = int(options["num_classes"])
        pool, test = pool * classes // 200, test * classes // 200
    if not test:
        test = round(pool * float(data["test_fraction"]))
        pool -= test
    val = 0
    if carves_val:
        per_class = data.get("val_per_class") if classes else None
        val = per_class * classes if per_class is not None else round(
            pool * float(data["val_fraction"]))
        pool -= val
    if classes and data.get("train_per_class") is not None:
        pool = min(pool, int(data["train_per_class"]) * classes)
    return Sizes(pool, val, test, channels, int(data["resolution"]), classes, note,
                 RC49_ALL_ANGLES if name == "rc49" else None)
