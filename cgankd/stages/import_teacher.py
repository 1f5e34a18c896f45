"""The ``import_teacher`` stage: a teacher trained elsewhere, checked and written as the
pipeline's teacher model file, in place of ``train_teacher`` (config ``teacher.weights``).

Two kinds of weights file are taken:
- a cgankd model file (``cgankd.model/1``, e.g. another experiment's ``teacher/model.pt``): it
  names its net, task, classes or label range and resolution, and each must match this
  experiment's config and data;
- a plain PyTorch state dict (also wrapped as ``{"state_dict": ...}`` or ``{"model": ...}``, as
  zoo checkpoints are): loaded into the config's ``teacher.net`` with the data's outputs and
  channels, every key and shape checked. A regression state dict must predict labels
  normalised to [0, 1] over the training labels' range, as cgankd's nets do (``LabelScale``).
Both are loaded with ``torch.load(weights_only=True)``.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cgankd.conventions import LabelScale
from cgankd.device import pick_device
from cgankd.errors import CgankdInputError
from cgankd.formats import MODEL, TAG_KEY
from cgankd.h5io import read_split
from cgankd.nets import build_net
from cgankd.nets.contract import check_contract
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.stage_options.nets import net_spec
from cgankd.train.model_file import save_model
from cgankd.train.resume import file_digest, load_checkpoint, write_jsonl
from cgankd.train.tensorset import tensorset_from_split
from cgankd.train.trainer import predict, score

WRAPPER_KEYS = ("state_dict", "model", "net")  # where zoo checkpoints keep their state dict
GIVEN = "given"  # the budget and selection a given teacher reports: not trained here
MISMATCH_SHOWN = 3  # keys listed per kind of state-dict mismatch


def run(*, weights: str | Path, train: str | Path, val: str | Path, model: str | Path,
        history: str | Path, net: Mapping[str, Any], device: str = "auto",
        source_hash: str = "") -> dict[str, Any]:
    """Check ``weights`` against the data (the splits ``train``, ``val``) and the config's
    ``net``, score it on ``val``, save it as ``model`` with its log ``history``."""
    where = f"teacher.weights {weights}"
    net_name, net_kwargs = net_spec(net, "teacher")
    train_split, val_split = read_split(train), read_split(val)
    task = train_split.task
    num_outputs = int(train_split.attrs["num_classes"]) if task == "classification" else 1
    in_channels = int(train_split.images.shape[1])
    resolution = int(train_split.images.shape[-1])
    scale = LabelScale.from_attrs(train_split.attrs) if task == "regression" else None

    blob = load_checkpoint(weights)
    if isinstance(blob, Mapping) and blob.get(TAG_KEY) in MODEL.tags:
        kind = "cgankd model file"
        _check_model_file(blob, where, net_name, net_kwargs, task, num_outputs, in_channels,
                          resolution, scale)
        state = blob["state_dict"]
    else:
        kind = "state dict"
        state = _plain_state_dict(blob, where)
    teacher_net = build_net(net_name, num_outputs, in_channels, **net_kwargs)
    _load_state(teacher_net, state, where, net_name)

    dev = pick_device(device)
    teacher_net = teacher_net.to(dev).eval()
    val_set = tensorset_from_split(val_split, scale)
    check_contract(teacher_net, val_set.batch(torch.arange(min(2, len(val_set))))[0].to(dev),
                   num_outputs, f"teacher ({where})")
    val_metrics = score(predict(teacher_net, val_set.images, 512, dev), val_set.labels, task,
                        scale)

    origin = {"path": str(weights), "sha256": file_digest(weights), "kind": kind}
    stable = {"role": "teacher", "net": net_name, "net_kwargs": net_kwargs, "weights": origin,
              "data_hash": train_split.attrs.get("config_hash"), "source_hash": source_hash}
    meta = {**stable, "config_hash": config_hash(stable), "identity": {"variant": "teacher"},
            "kd_method": "none", "seed": None, "recipe": None, "task": task,
            "num_outputs": num_outputs, "in_channels": in_channels, "resolution": resolution,
            "num_classes": num_outputs if task == "classification" else None,
            "train_size": None, "budget": GIVEN, "steps": None, "epochs": None, "passes": None,
            "selection": GIVEN, "best_step": None, "val": val_metrics,
            "provenance": volatile_provenance()}
    if scale is not None:
        meta.update(scale.as_dict())
    save_model(model, {k: v.detach().cpu() for k, v in teacher_net.state_dict().items()}, meta)
    write_jsonl(history, [{"imported": origin, "val": val_metrics}])
    return {"val": val_metrics, "kind": kind}


def _check_model_file(blob: Mapping[str, Any], where: str, net_name: str,
                      net_kwargs: Mapping[str, Any], task: str, num_outputs: int,
                      in_channels: int, resolution: int, scale: LabelScale | None) -> None:
    """A cgankd model file must hold the configured net, trained for this data's task,
    outputs, channels, resolution and (regression) label range."""
    held = (blob.get("net"), dict(blob.get("net_kwargs") or {}))
    if held != (net_name, dict(net_kwargs)):
        raise CgankdInputError(f"{where}: holds net {held[0]} {held[1]}, the config's teacher "
                               f"is {net_name} {dict(net_kwargs)}; set teacher.net and "
                               f"teacher.kwargs to the file's")
    checks = [("task", blob.get("task"), task), ("outputs", blob.get("num_outputs"), num_outputs),
              ("input channels", blob.get("in_channels"), in_channels),
              ("resolution", blob.get("resolution"), resolution)]
    if scale is not None:
        checks.append(("label range", (blob.get("label_min"), blob.get("label_max")),
                       (scale.low, scale.high)))
    for what, held_value, wanted in checks:
        if held_value != wanted:
            raise CgankdInputError(f"{where}: {what} {held_value!r}, where this "
                                   f"experiment's data has {wanted!r}")


def _plain_state_dict(blob: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(blob, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(blob.get(key), Mapping):
                blob = blob[key]
                break
    if (not isinstance(blob, Mapping) or not blob
            or not all(isinstance(v, torch.Tensor) for v in blob.values())):
        raise CgankdInputError(f"{where}: neither a cgankd model file nor a state dict (a "
                               f"mapping of parameter names to tensors, possibly under "
                               f"{' / '.join(repr(k) for k in WRAPPER_KEYS)})")
    # DataParallel / DDP checkpoints prefix every key with "module."
    if all(k.startswith("module.") for k in blob):
        blob = {k.removeprefix("module."): v for k, v in blob.items()}
    return dict(blob)


def _load_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str,
                net_name: str) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = [f"{label}: {', '.join(keys[:MISMATCH_SHOWN])}"
                f"{f' (+{len(keys) - MISMATCH_SHOWN} more)' if len(keys) > MISMATCH_SHOWN else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected),
                                    ("shape (file vs net)", misshaped)) if keys]
    if problems:
        raise CgankdInputError(f"{where}: does not fit net {net_name} for this data: "
                               f"{'; '.join(problems)}")
    net.load_state_dict(state)
