"""A configured dataset -> the train, val and test parts (the ``prepare_data`` stage,
``cgankd.stages.prepare_data``, converts and writes them).

Order of operations (each draw from one generator seeded by ``data.seed``):
1. the loader reads the source (files, or the bundled digits) into a training pool, plus the
   val/test parts the source itself defines;
2. a test part is carved from the pool (stratified) only when the source has none;
3. a validation part is carved from the pool when the source has none: nothing is ever
   selected on test;
4. classification: ``train_per_class`` labelled images per class are kept (scarce labels);
5. channels and resolution are converted; everything is checked before anything is written.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cgankd import __version__
from cgankd.data import checks
from cgankd.data.registry import DATASETS, LoadContext, Part, RawData
from cgankd.data.split import carve
from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.provenance import config_hash

SPLITS = ("train", "val", "test")


def load_raw(data_cfg: Mapping[str, Any]) -> RawData:
    spec = DATASETS.get(data_cfg["dataset"])
    ctx = LoadContext(
        name=spec.name,
        root=Path(data_cfg["root"]).expanduser() if data_cfg.get("root") else None,
        options=merge_options(spec.defaults, data_cfg.get("options"), "data.options"),
        download=bool(data_cfg.get("download", False)),
        seed=int(data_cfg["seed"]),
    )
    return spec.load(ctx)


def _check_labels(raw: RawData) -> None:
    for name in SPLITS:
        part = getattr(raw, name)
        if part is None:
            continue
        where = f"{raw.source} ({name})"
        if raw.task == "classification":
            part.labels = checks.check_class_labels(part.labels, len(raw.class_names), where)
        else:
            part.labels = checks.check_regression_labels(part.labels, where)


def make_splits(raw: RawData, data_cfg: Mapping[str, Any]) -> dict[str, Part]:
    """Apply steps 2-4 of the module docstring; returns parts keyed by split name."""
    _check_labels(raw)
    rng = np.random.default_rng(int(data_cfg["seed"]))
    classification = raw.task == "classification"
    pool, val, test = raw.train, raw.val, raw.test
    if test is None:
        test, pool = carve(pool, raw.task, per_class=None, fraction=data_cfg["test_fraction"],
                           rng=rng, where="data.test_fraction")
    if val is None:
        per_class = data_cfg.get("val_per_class") if classification else None
        val, pool = carve(pool, raw.task, per_class=per_class,
                          fraction=None if per_class is not None else data_cfg["val_fraction"],
                          rng=rng, where="data.val_per_class" if per_class is not None
                          else "data.val_fraction")
    if data_cfg.get("train_per_class") is not None:
        if not classification:
            raise CgankdInputError("data.train_per_class: applies to classification datasets only")
        pool, _ = carve(pool, raw.task, per_class=data_cfg["train_per_class"], fraction=None,
                        rng=rng, where="data.train_per_class")
    if classification:
        checks.check_every_class_present(pool.labels, raw.class_names,
                                         f"{raw.source} (train)")
    parts = {"train": pool, "val": val, "test": test}
    for name, part in parts.items():
        if len(part) == 0:
            raise CgankdInputError(f"{raw.source}: the {name} split is empty; check "
                                   f"data.val_fraction / data.test_fraction")
    return parts


def split_attrs(raw: RawData, data_cfg: Mapping[str, Any], name: str, part: Part) -> dict:
    attrs: dict[str, Any] = {
        "task": raw.task,
        "dataset": data_cfg["dataset"],
        "split": name,
        "resolution": int(part.images.shape[-1]),
        "channels": int(part.images.shape[1]),
        "num_samples": len(part),
        "config_hash": config_hash(dict(data_cfg)),
        "seed": int(data_cfg["seed"]),
        "package_version": __version__,
        "source": raw.source,
    }
    if raw.task == "classification":
        attrs["num_classes"] = len(raw.class_names)
        attrs["class_names"] = list(raw.class_names)
        attrs["class_counts"] = np.bincount(part.labels, minlength=len(raw.class_names)).tolist()
    else:
        low, high = raw.label_range
        attrs.update(label_min=float(low), label_max=float(high), label_unit=raw.label_unit,
                     observed_min=float(part.labels.min()), observed_max=float(part.labels.max()),
                     distinct_labels=int(len(np.unique(part.labels))))
    return attrs
