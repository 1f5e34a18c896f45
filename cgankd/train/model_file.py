"""Trained-model files: weights plus everything needed to rebuild and interpret the net.

A model file is a plain dict: ``state_dict``, the net's registry name and constructor
arguments, the task and label normalisation, and provenance. ``load_model`` rebuilds the net
from it alone, so evaluation, filtering and distillation need no config.
"""

from pathlib import Path
from typing import Any

import torch

from cgankd.conventions import LabelScale
from cgankd.formats import MODEL, TAG_KEY, check_fields
from cgankd.nets import build_net
from cgankd.train.resume import load_checkpoint, save_checkpoint

def save_model(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    save_checkpoint(path, {TAG_KEY: MODEL.tag, "state_dict": state_dict, **meta})


def build_from_meta(meta: dict[str, Any]) -> torch.nn.Module:
    return build_net(meta["net"], int(meta["num_outputs"]), int(meta["in_channels"]),
                     **meta.get("net_kwargs", {}))


def load_model(path: str | Path, device: torch.device | str = "cpu"
               ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(net in eval mode on ``device``, meta dict) from a model file."""
    meta = check_fields(load_checkpoint(path, "cpu"), MODEL, path)
    net = build_from_meta(meta)
    net.load_state_dict(meta.pop("state_dict"))
    return net.to(device).eval(), meta


def label_scale_of(meta: dict[str, Any]) -> LabelScale | None:
    return LabelScale.from_attrs(meta) if meta["task"] == "regression" else None
