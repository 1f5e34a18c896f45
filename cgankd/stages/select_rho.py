"""The ``select_rho`` stage: the filter's rho chosen on the validation split, as cGAN-KD v1 did
on CIFAR-10 and RC-49 (METHOD.md section 5: "rho is chosen by grid search on a validation
split carved from the training set, never on test").

The teacher scores the final rung's pool (the first fake chain's) once. Then for each rho of
the grid the filter's own selection (``cgankd.filtering.select_rows``, with the final rung's
options, filter seed and fake count, so a rho keeps here exactly the fakes filter_relabel
keeps at it) picks the fakes; the first student net trains on real + those fakes (the
training rules' ``train_model``, the fakes' recipe updated by the selection's), once per
selection seed; the final weights' validation score is recorded. The rho of the best mean
score is chosen (``cgankd.filtering.rho_selection.choose_rho``: ties go to the larger rho).
The test split is never read. Students train from scratch even where fake.init is finetune:
the runs compare rho values, and a fine-tune would need every NOKD student first.
"""

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.device import pick_device
from cgankd.errors import CgankdInputError
from cgankd.filtering import select_rows
from cgankd.filtering.rho_selection import FORMAT, TIE_RULE, choose_rho
from cgankd.formats import POOL
from cgankd.h5io import Split, atomic_path, check_h5, open_h5, read_array, write_split
from cgankd.provenance import config_hash
from cgankd.report.rho_selection import plot_rho_curve
from cgankd.stage_options.fake import checked_filter_options, checked_select_rho
from cgankd.stages._pool import kept_chunks, score_pool
from cgankd.stages._training import train_model
from cgankd.train.model_file import label_scale_of, load_model

POOL_COLUMNS = ("images", "labels", "index")  # what the selection reads of the pool


def _score_pool(pool: str | Path, teacher: str | Path, batch_size: int,
                device: torch.device) -> tuple[dict[str, Any], np.ndarray, torch.Tensor,
                                               np.ndarray]:
    """(pool attributes, labels, teacher losses, teacher labels) of every pooled fake, scored
    as filter_relabel scores them."""
    with open_h5(pool) as f:
        # the columns and attributes the selection reads; one clear line if one is missing
        attrs = check_h5(f, POOL, POOL_COLUMNS, attrs=("task",))
        labels = read_array(f, "labels")
    net, meta = load_model(teacher, device)
    scale = label_scale_of(meta) if attrs["task"] == "regression" else None
    losses, teacher_labels = score_pool(pool, net, labels, attrs["task"], scale, batch_size,
                                        None, device)
    if len(losses) == 0:
        raise CgankdInputError(f"{pool}: the pool holds no fakes")
    return attrs, labels, losses, teacher_labels


def _write_fakes(pool: str | Path, out_h5: Path, kept: np.ndarray, labels: np.ndarray,
                 attrs: Mapping[str, Any]) -> None:
    """The kept rows of the pool (sorted ``kept``) with ``labels`` as a training file."""
    images, index = [], []
    for _, chunk in kept_chunks(pool, kept, ["images", "index"]):
        images.append(chunk["images"])
        index.append(chunk["index"])
    write_split(out_h5, Split(images=np.concatenate(images), labels=labels,
                              index=np.concatenate(index), attrs=dict(attrs)))


def run(pool: str | Path, teacher: str | Path, train: str | Path, val: str | Path,
        selection: str | Path, curve: str | Path, *, options: Mapping[str, Any] | None,
        select: Mapping[str, Any], student: str, net: Mapping[str, Any],
        recipe: Mapping[str, Any], fake_count: int, seed: int, device: str = "auto",
        accel: Mapping[str, Any] | None = None, source_hash: str = "") -> dict[str, Any]:
    """Score each rho of ``select``'s grid on ``val``; write ``selection`` (JSON) and
    ``curve`` (PNG); return the selection.

    ``options`` are the final rung's filter options (their rho is replaced by each grid
    value), ``seed`` its chain's filter seed, ``fake_count`` the fakes per rho (the final
    rung's count); ``student``/``net`` the first student net's name and spec; ``recipe`` the
    fakes' recipe with the selection's overrides.
    """
    select = checked_select_rho(select)
    opts = checked_filter_options(options)
    if opts["mode"] == "none":
        raise CgankdInputError("filter.select_rho: the final rung does not filter (mode none), "
                               "so there is no rho to choose")
    dev = pick_device(device)
    attrs, labels, losses, teacher_labels = _score_pool(pool, teacher, int(opts["batch_size"]),
                                                        dev)
    task = attrs["task"]
    num_classes = int(attrs["num_classes"]) if task == "classification" else None
    metric = "accuracy" if task == "classification" else "mae"
    fake_attrs = {k: v for k, v in attrs.items() if k not in ("acceptance",)}
    per_rho = []
    with tempfile.TemporaryDirectory(prefix=".select_rho_", dir=Path(selection).parent) as tmp:
        fakes = Path(tmp) / "fakes.h5"
        for rho in select["grid"]:
            rho_opts = {**opts, "rho": rho}
            kept, cutoffs, passed = select_rows(losses, labels, rho_opts, task, fake_count,
                                                num_classes, np.random.default_rng(seed))
            final = teacher_labels[kept] if opts["relabel"] else labels[kept]
            _write_fakes(pool, fakes, kept, final, fake_attrs)
            scores, metrics = {}, {}
            for student_seed in select["seeds"]:
                run_dir = Path(tmp) / f"rho{rho:g}_seed{student_seed}"
                result = train_model(
                    role="student", train=train, val=val, model=run_dir / "model.pt",
                    history=run_dir / "train_history.jsonl", net=net, recipe=recipe,
                    seed=student_seed, device=device, fakes=[fakes],
                    source_hash=source_hash, progress=False, accel=accel,
                    identity={"student": student, "variant": f"rho selection: rho {rho:g}"})
                scores[str(student_seed)] = float(result["val"]["score"])
                metrics[str(student_seed)] = float(result["val"][metric])
                print(f"select_rho: rho {rho:g} seed {student_seed}: validation {metric} "
                      f"{metrics[str(student_seed)]:.4f}", flush=True)
            per_rho.append({"rho": rho, "passed": passed, "kept": int(len(kept)),
                            "cutoffs": [float(c) for c in cutoffs],
                            "val_score": scores, "val_metric": metrics,
                            "mean_score": float(np.mean(list(scores.values()))),
                            "mean_metric": float(np.mean(list(metrics.values())))})
    chosen = choose_rho({row["rho"]: row["mean_score"] for row in per_rho})
    settings = {"options": {k: v for k, v in opts.items() if k != "rho"},
                "count": int(fake_count),
                "seed": int(seed), "select": select, "student": student, "net": dict(net),
                "recipe": dict(recipe)}
    result = {"format": FORMAT, "task": task, "metric": metric,
              "score": "higher is better: accuracy (%), or -MAE", **settings,
              "seeds": select["seeds"], "grid": select["grid"], "per_rho": per_rho,
              "chosen_rho": chosen, "tie_rule": TIE_RULE, "source_hash": source_hash,
              "config_hash": config_hash({**settings, "pool": attrs.get("config_hash")})}
    with atomic_path(selection) as tmp_json:
        tmp_json.write_text(json.dumps(result, indent=1))
    plot_rho_curve(result, curve)
    return result
