"""The ``evaluate`` stage: a model file and the test split in, a metrics JSON out.

Classification: top-1 accuracy and error (%), per-class accuracy. Regression: MAE and RMSE in
the labels' original units (predictions are not rounded), and MAE per label bin, which shows
where along the label range a model fails.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgankd.device import pick_device
from cgankd.h5io import atomic_path, read_split
from cgankd.train.model_file import label_scale_of, load_model
from cgankd.train.trainer import predict

LABEL_BINS = 10  # regression: MAE reported for this many equal-width bins of the label range


def classification_metrics(logits: torch.Tensor, labels: np.ndarray,
                           class_names: list[str]) -> dict[str, Any]:
    pred = logits.argmax(1).numpy()
    correct = pred == labels
    per_class = {name: float(100.0 * correct[labels == k].mean()) if (labels == k).any() else None
                 for k, name in enumerate(class_names)}
    acc = float(100.0 * correct.mean())
    return {"accuracy": acc, "error": 100.0 - acc, "per_class_accuracy": per_class}


def regression_metrics(pred: np.ndarray, labels: np.ndarray, low: float,
                       high: float) -> dict[str, Any]:
    err = pred - labels
    edges = np.linspace(low, high, LABEL_BINS + 1)
    which = np.clip(np.digitize(labels, edges[1:-1]), 0, LABEL_BINS - 1)
    bins = [{"low": float(edges[b]), "high": float(edges[b + 1]), "n": int((which == b).sum()),
             "mae": float(np.abs(err[which == b]).mean()) if (which == b).any() else None}
            for b in range(LABEL_BINS)]
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "mae_per_bin": bins}


def training_protocol(meta: dict[str, Any]) -> dict[str, Any]:
    """What the results table must name beside a model's score: its budget protocol, steps,
    epochs and checkpoint selection, and the machine and torch version it was trained with
    (numbers are reproducible on one machine only). Model files from before these were
    recorded give None, or what their recipe implies: steps budgets, best-on-val selection."""
    recipe = meta.get("recipe") or {}
    provenance = meta.get("provenance") or {}
    return {"budget": meta.get("budget", recipe.get("budget", "steps")),
            "steps": meta.get("steps", recipe.get("steps")),
            "epochs": meta.get("epochs", recipe.get("epochs")), "passes": meta.get("passes"),
            "selection": meta.get("selection", recipe.get("selection", "best")),
            "trained_on": {key: provenance.get(key) for key in ("machine", "processor",
                                                                "torch", "host")}}


def run(model: str | Path, test: str | Path, metrics: str | Path, device: str = "auto",
        batch_size: int = 512) -> dict[str, Any]:
    """Score the model file ``model`` on the split ``test``; write ``metrics`` (JSON)."""
    dev = pick_device(device)
    net, meta = load_model(model, dev)
    test_split = read_split(test)
    outputs = predict(net, torch.from_numpy(test_split.images), batch_size, dev)
    if meta["task"] == "classification":
        scores = classification_metrics(outputs, test_split.labels,
                                        test_split.attrs["class_names"])
    else:
        scale = label_scale_of(meta)
        pred = scale.predicted(outputs.numpy().astype(np.float64))
        scores = regression_metrics(pred, test_split.labels.astype(np.float64), scale.low,
                                    scale.high)
        scores["unit"] = test_split.attrs.get("label_unit", "")
    result = {"model": str(model), "task": meta["task"], "n_test": len(test_split),
              "role": meta["role"], "net": meta["net"], "kd_method": meta["kd_method"],
              "seed": meta["seed"], "identity": meta.get("identity", {}),
              "train_size": meta.get("train_size"), "best_step": meta.get("best_step"),
              "val": meta.get("val"), **training_protocol(meta), **scores}
    with atomic_path(metrics) as tmp:
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
