"""The ``filter_relabel`` stage (METHOD.md section 5): the teacher prunes and relabels fakes.

The teacher scores every pooled fake on un-augmented images (its loss against the fake's
label: cross-entropy, or |clip(y_hat) - y| in original units). Modes:
- ``per_class`` (v3): per class, the rho-quantile of the first ``burnin`` samples' losses is
  the cutoff; the class's samples below it are taken in pool order until the class's quota is
  met (classes stay balanced);
- ``global`` (v1, regression): one rho-quantile over the whole pool;
- ``none``: no filtering (the unprocessed and subsampled rungs of the ablation ladder).
``relabel`` replaces each kept label by the teacher's prediction. Every mode writes exactly
``count`` samples, so every rung of the ladder adds the same number of fakes.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.device import pick_device
from cgankd.errors import CgankdInputError
from cgankd.filtering import (classification_losses, global_quantile_cutoff, regression_losses,
                              relabel_classification)
from cgankd.h5io import decode_attrs, open_h5, read_array, write_h5
from cgankd.options import merge_options
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.train.model_file import label_scale_of, load_model
from cgankd.train.trainer import predict

FILTER_DEFAULTS: dict[str, Any] = {
    "mode": "per_class",  # per_class (v3) | global (v1, regression) | none
    "rho": 0.9,  # quantile of the teacher's loss kept (grid-searched on validation)
    "burnin": 1000,  # per_class: samples per class whose losses set the cutoff (published)
    "relabel": False,  # replace labels by the teacher's (v1 classification, regression)
    "batch_size": 512,  # teacher scoring batch
}


def checked_filter_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = merge_options(FILTER_DEFAULTS, options, "filter")
    if opts["mode"] not in ("per_class", "global", "none"):
        raise CgankdInputError(f"filter.mode: {opts['mode']!r} is not per_class, global or none")
    return opts


def _quotas(count: int, num_classes: int) -> np.ndarray:
    """``count`` split over classes as evenly as possible (the first classes get the rest)."""
    quotas = np.full(num_classes, count // num_classes)
    quotas[: count % num_classes] += 1
    return quotas


def _per_class_selection(losses: torch.Tensor, labels: np.ndarray, opts: Mapping[str, Any],
                         quotas: np.ndarray, filtering: bool) -> tuple[np.ndarray, list[float]]:
    """Rows kept, in pool order, and the per-class cutoffs (inf without filtering)."""
    cutoffs, rows = [], []
    for k, quota in enumerate(quotas):
        members = np.flatnonzero(labels == k)
        cutoff = float("inf")
        if filtering:
            burn = members[: int(opts["burnin"])]
            cutoff = global_quantile_cutoff(losses[burn], float(opts["rho"]))
            members = members[(losses[members] < cutoff).numpy()]
        if len(members) < quota:
            raise CgankdInputError(f"filter: class {k} has {len(members)} fakes left after "
                                   f"filtering, fewer than its quota {quota}; raise "
                                   f"subsample.per_class")
        rows.append(members[:quota])
        cutoffs.append(cutoff)
    return np.sort(np.concatenate(rows)), cutoffs


def filter_relabel(pool_h5: str | Path, teacher_path: str | Path, out_h5: str | Path, *,
                   options: Mapping[str, Any] | None, count: int, seed: int,
                   device: str = "auto", source_hash: str = "") -> dict[str, Any]:
    opts = checked_filter_options(options)
    dev = pick_device(device)
    with open_h5(pool_h5) as f:
        pool = {k: read_array(f, k) for k in ("images", "labels", "density_ratio", "index")}
        pool_attrs = decode_attrs(f.attrs)
    task = pool_attrs["task"]
    teacher, meta = load_model(teacher_path, dev)
    outputs = predict(teacher, torch.from_numpy(pool["images"]), int(opts["batch_size"]), dev)
    labels = pool["labels"]
    filtering = opts["mode"] != "none"
    rng = np.random.default_rng(seed)

    if task == "classification":
        num_classes = int(pool_attrs["num_classes"])
        losses = classification_losses(outputs, torch.from_numpy(labels))
        teacher_labels = relabel_classification(outputs).numpy()
        if opts["mode"] == "global":
            cutoff = global_quantile_cutoff(losses, float(opts["rho"]))
            kept = np.flatnonzero((losses < cutoff).numpy())
            cutoffs = [cutoff]
        else:
            kept, cutoffs = _per_class_selection(losses, labels, opts,
                                                 _quotas(count, num_classes), filtering)
        agreement = float(100.0 * (teacher_labels == labels).mean())
    else:
        scale = label_scale_of(meta)
        losses = regression_losses(outputs, torch.from_numpy(scale.normalise(labels)), scale.span)
        teacher_labels = scale.predicted(outputs.numpy()).astype(np.float32)
        cutoffs = [global_quantile_cutoff(losses, float(opts["rho"]))] if filtering \
            else [float("inf")]
        kept = np.flatnonzero((losses < cutoffs[0]).numpy())
        agreement = float(losses.mean())  # regression: mean |teacher - label|, original units

    if len(kept) > count:  # global modes and regression keep more than needed: draw count
        kept = np.sort(rng.choice(kept, size=count, replace=False))
    if len(kept) < count:
        raise CgankdInputError(f"filter: {len(kept)} fakes kept, fewer than fake.count = "
                               f"{count}; enlarge the subsample pool")
    final = teacher_labels[kept] if opts["relabel"] else labels[kept]
    summary = {
        "task": task, "mode": opts["mode"], "rho": float(opts["rho"]),
        "relabel": bool(opts["relabel"]), "count": int(count), "pool": int(len(labels)),
        "cutoffs": cutoffs, "teacher_loss_mean_pool": float(losses.mean()),
        "teacher_loss_mean_kept": float(losses[kept].mean()),
        "labels_changed": int((final != labels[kept]).sum()),
        ("teacher_agreement_pool" if task == "classification" else "teacher_mae_pool"): agreement,
    }
    if task == "classification":
        summary["teacher_agreement_kept"] = float(100.0 * (teacher_labels[kept] ==
                                                           labels[kept]).mean())
        summary["kept_per_class"] = np.bincount(labels[kept], minlength=num_classes).tolist()
    attrs = {k: v for k, v in pool_attrs.items() if k not in ("acceptance",)}
    attrs.update(summary=summary, filter_options=opts, source_hash=source_hash,
                 config_hash=config_hash({"options": opts, "count": count, "seed": seed,
                                          "pool": pool_attrs.get("config_hash")}))
    write_h5(out_h5, {"images": pool["images"][kept], "labels": final,
                      "label_original": labels[kept], "teacher_label": teacher_labels[kept],
                      "teacher_loss": losses[kept].numpy().astype(np.float32),
                      "density_ratio": pool["density_ratio"][kept],
                      "index": pool["index"][kept]}, attrs, volatile_provenance())
    return summary
