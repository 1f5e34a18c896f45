"""The cDR-RS feature extractor, built and trained on the real splits: shared by ``fit_dre``
(whose density ratios live in its feature space) and ``train_quality_extractor`` (an
independent one that the quality stage measures fidelity and variety in).

Classification: ResNet-34 trunk + Linear(512 -> C*H*W) + classifier head, cross-entropy;
regression: sparse autoencoder with a regression head (METHOD.md section 3). Trained with the
generic trainer, so it gets the recipe's schedule, selection on validation and resume.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cgankd.conventions import LabelScale
from cgankd.dre.dre_file import build_extractor
from cgankd.fake.heads import ExtractorObjective, ScoredOutput
from cgankd.h5io import Split
from cgankd.train.tensorset import TensorSet, tensorset_from_split
from cgankd.train.trainer import fit


@dataclass
class ExtractorSetup:
    """An untrained extractor with what rebuilds it, and the splits it trains on."""

    extractor: torch.nn.Module
    kwargs: dict[str, Any]  # build_extractor's arguments, plain values (stored in files)
    task: str
    scale: LabelScale | None  # regression labels' scale; None for classification
    train_set: TensorSet
    val_set: TensorSet


def setup_extractor(train_split: Split, val_split: Split,
                    opts: Mapping[str, Any]) -> ExtractorSetup:
    """The extractor ``opts`` (checked EXTRACTOR_KEYS) describe, for images like the splits'."""
    task = train_split.task
    scale = LabelScale.from_attrs(train_split.attrs) if task == "regression" else None
    c, res = int(train_split.images.shape[1]), int(train_split.images.shape[-1])
    feat_shape = tuple(opts["feat_shape"] or (c, res, res))
    num_classes = int(train_split.attrs["num_classes"]) if task == "classification" else None
    kwargs = {"task": task, "in_channels": c, "resolution": res, "num_classes": num_classes,
              "feat_shape": list(feat_shape), "width": int(opts["extractor_width"])}
    return ExtractorSetup(build_extractor(**{**kwargs, "feat_shape": feat_shape}), kwargs,
                          task, scale, tensorset_from_split(train_split, scale),
                          tensorset_from_split(val_split, scale))


def extractor_optimizer(choice: Mapping[str, Any] | None, recipe: Mapping[str, Any]):
    """The trainer's make_optimizer for the extractor (its ``extractor_optimizer`` option,
    checked): None keeps the recipe's SGD; adam: Adam with the recipe's lr and weight decay
    and the option's betas (cGAN-KD v1's sparse autoencoder, train_sparseAE.py:42 at 75408cd)."""
    if choice is None or choice["name"] == "sgd":
        return None

    def adam(params: list) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=float(recipe["lr"]),
                                betas=tuple(float(b) for b in choice["betas"]),
                                weight_decay=float(recipe["weight_decay"]))
    return adam


def train_extractor(setup: ExtractorSetup, opts: Mapping[str, Any], *, seed: int,
                    device: torch.device, accel: Mapping[str, Any] | None,
                    checkpoint_path: str | Path, log_path: str | Path,
                    fingerprint: Any, desc: str, progress: bool) -> dict[str, Any]:
    """Train ``setup.extractor`` with ``opts``'s recipe and optimiser; load the selected
    weights into it; return {extractor_state, extractor_val, extractor_history}."""
    objective = ExtractorObjective(setup.extractor, setup.task, opts["ae_sparsity"],
                                   opts["ae_reg_weight"])
    result = fit(objective, ScoredOutput(setup.extractor, setup.task), setup.train_set,
                 setup.val_set, opts["extractor_recipe"], task=setup.task,
                 label_scale=setup.scale, device=device, seed=seed,
                 checkpoint_path=checkpoint_path, log_path=log_path, fingerprint=fingerprint,
                 desc=desc, progress=progress, accel=accel,
                 make_optimizer=extractor_optimizer(opts["extractor_optimizer"],
                                                    opts["extractor_recipe"]))
    state = {k.removeprefix("model."): v for k, v in result.best_state.items()}
    setup.extractor.load_state_dict(state)
    return {"extractor_state": state, "extractor_val": result.best_val,
            "extractor_history": result.history}
