"""What a file of the pipeline holds, for ``cgankd info``: kind, format, shapes, labels, hashes.

Two families, each kind declared in ``cgankd.formats``: HDF5 data files (splits, pools, fake
sets, generated sets), told by their ``format`` attribute (files written before it: by their
datasets and root attributes), and torch files (model, generator, DRE model, resume
checkpoints), told by their ``format`` field (old spellings too) or resume key. Anything else
is refused with one line naming the file.
"""

import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from cgankd.errors import CgankdInputError
from cgankd.formats import (DRE, FAKE_SET, GENERATOR, MODEL, POOL, RESUME_CHECKPOINT, RESUME_KEY,
                            SPLIT, TAG_KEY, h5_kind_of, torch_kind_of)
from cgankd.h5io import PROVENANCE_GROUP, decode_attrs, open_h5, read_array
from cgankd.train.resume import load_checkpoint

# Per-sample datasets whose values are labels: summarised as classes and counts, or a range.
LABEL_KEYS = ("labels",)
# The provenance fields shown in plain text; --json shows all that are stored.
PROVENANCE_SHOWN = ("git_sha", "cgankd", "created_utc", "host")
SOURCE_HASH_KEYS = ("source_hash", "package_hash")  # how stages record the package's code hash


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready summary of ``path``; CgankdInputError (one line) if it is no cgankd file."""
    path = Path(path)
    if not path.exists():
        raise CgankdInputError(f"{path}: file not found")
    if not path.is_file():
        raise CgankdInputError(f"{path}: not a file")
    if h5py.is_hdf5(path):
        info = _describe_h5(path)
    elif zipfile.is_zipfile(path):  # torch.save's format since torch 1.6
        info = _describe_torch(path)
    else:
        raise CgankdInputError(f"{path}: not a cgankd file (neither HDF5 nor a torch file)")
    return {"file": str(path), "bytes": path.stat().st_size, **info}


# --- HDF5 ----------------------------------------------------------------------------------

def _h5_kind(datasets: set[str], attrs: dict[str, Any]) -> str | None:
    kind = h5_kind_of(attrs.get(TAG_KEY), datasets, attrs)
    if kind is FAKE_SET:
        return f"{kind.title} (filtered)"
    if kind is POOL:
        return f"{kind.title} (subsample {attrs.get('method')})"
    if kind is SPLIT and "split" in attrs:
        return f"{kind.title} ({attrs['split']})"
    if kind is not None:
        return kind.title
    if "task" in attrs and {"images", "labels"} <= datasets:
        return "cgankd image set"
    return None


def _label_summary(labels: np.ndarray, attrs: dict[str, Any]) -> dict[str, Any]:
    if attrs.get("task") == "classification":
        k = int(attrs.get("num_classes") or (labels.max() + 1 if len(labels) else 0))
        out = {"num_classes": k,
               "class_counts": np.bincount(labels.astype(np.int64), minlength=k).tolist()}
        if attrs.get("class_names"):
            out["class_names"] = list(attrs["class_names"])
        return out
    out = {"distinct": int(len(np.unique(labels)))}
    if len(labels):
        out.update(min=float(labels.min()), max=float(labels.max()))
    if "label_min" in attrs:
        out["declared_range"] = [attrs["label_min"], attrs["label_max"]]
    return out


def _describe_h5(path: Path) -> dict[str, Any]:
    with open_h5(path) as f:
        attrs = decode_attrs(f.attrs)
        datasets = {name: {"shape": list(obj.shape), "dtype": str(obj.dtype)}
                    for name, obj in f.items() if isinstance(obj, h5py.Dataset)}
        kind = _h5_kind(set(datasets), attrs)
        if kind is None:
            raise CgankdInputError(f"{path}: not a cgankd file (an HDF5 file without the "
                                   f"'task' attribute and 'images'/'labels' datasets; found "
                                   f"{sorted(f.keys())})")
        labels = {key: _label_summary(read_array(f, key), attrs)
                  for key in LABEL_KEYS if key in datasets}
        group = f.get(PROVENANCE_GROUP)
        provenance = decode_attrs(group.attrs) if isinstance(group, h5py.Group) else None
    rows = {d["shape"][0] for d in datasets.values() if d["shape"]}
    return {"kind": kind, "format": None, "task": attrs.get("task"),
            "samples": rows.pop() if len(rows) == 1 else None, "datasets": datasets,
            "labels": labels.get("labels"), "config_hash": attrs.get("config_hash")
            or attrs.get("generator_config_hash"),
            "source_hash": next((attrs[k] for k in SOURCE_HASH_KEYS if k in attrs), None),
            "seed": attrs.get("seed"), "provenance": provenance,
            "attrs": sorted(attrs)}


# --- torch files ---------------------------------------------------------------------------

def _tensor_count(state: Any) -> tuple[int, int]:
    """(tensors, numbers) in a (nested) state dict."""
    if isinstance(state, torch.Tensor):
        return 1, state.numel()
    if isinstance(state, dict):
        parts = [_tensor_count(v) for v in state.values()]
    elif isinstance(state, (list, tuple)):
        parts = [_tensor_count(v) for v in state]
    else:
        return 0, 0
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _labels_of_meta(blob: dict[str, Any]) -> dict[str, Any] | None:
    if blob.get("task") == "classification" and blob.get("num_classes") is not None:
        return {"num_classes": int(blob["num_classes"])}
    if blob.get("task") == "regression" and "label_min" in blob:
        return {"declared_range": [blob["label_min"], blob["label_max"]]}
    return None


def _describe_torch(path: Path) -> dict[str, Any]:
    try:
        blob = load_checkpoint(path)
    except CgankdInputError:
        raise CgankdInputError(f"{path}: not a cgankd file (a zip archive that is no torch "
                               f"file loadable with weights_only)") from None
    if not isinstance(blob, dict) or not (TAG_KEY in blob or RESUME_KEY in blob):
        raise CgankdInputError(f"{path}: not a cgankd file (a torch file without a cgankd "
                               f"'format' or resume key)")
    fmt, kind = blob.get(TAG_KEY), torch_kind_of(blob)
    common = {"format": fmt, "task": blob.get("task"), "labels": _labels_of_meta(blob),
              "config_hash": blob.get("config_hash"),
              "source_hash": next((blob[k] for k in SOURCE_HASH_KEYS if k in blob), None),
              "seed": blob.get("seed"), "provenance": blob.get("provenance"),
              "fields": sorted(blob)}
    if RESUME_KEY in blob:  # a resume checkpoint of any loop: its progress and key
        done = next(((k, blob[k]) for k in ("iteration", "step", "epoch") if k in blob),
                    (None, None))
        tensors, numbers = _tensor_count(blob)
        return {**common, "kind": (kind or RESUME_CHECKPOINT).title,
                "progress": {done[0]: done[1]} if done[0] else None, "steps": blob.get("steps"),
                "resume_key": blob[RESUME_KEY], "log_records": len(blob.get("history", [])),
                "tensors": tensors, "numbers": numbers}
    if kind is GENERATOR:
        kw = blob["generator_kwargs"]
        tensors, numbers = _tensor_count(blob["state_dict"])
        return {**common, "kind": GENERATOR.title, "backbone": blob.get("backbone"),
                "image_shape": [kw.get("channels"), kw.get("resolution"), kw.get("resolution")],
                "dim_z": kw.get("dim_z"), "iterations": blob.get("iterations"),
                "label_embedding": blob.get("y2h_state_dict") is not None,
                "tensors": tensors, "parameters": numbers}
    if kind is MODEL:
        res = blob.get("resolution")
        tensors, numbers = _tensor_count(blob["state_dict"])
        return {**common, "kind": f"{MODEL.title} ({blob.get('role', 'net')})",
                "net": blob.get("net"), "net_kwargs": blob.get("net_kwargs"), "kd_method": blob.get("kd_method"),
                "input_shape": [blob.get("in_channels"), res, res],
                "num_outputs": blob.get("num_outputs"), "val": blob.get("val"),
                "best_step": blob.get("best_step"), "tensors": tensors, "parameters": numbers}
    tensors, numbers = _tensor_count(blob)
    return {**common, "kind": DRE.title if kind is DRE else "cgankd torch file",
            "tensors": tensors, "numbers": numbers}


# --- plain text ----------------------------------------------------------------------------

def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        text = "x".join(map(str, value)) if all(isinstance(v, int) for v in value) \
            else ", ".join(map(str, value))
        return text if len(text) <= 100 else text[:97] + "..."
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def as_text(info: dict[str, Any]) -> str:
    """A few lines for a person; ``describe`` holds more for --json."""
    lines = [f"{info['file']}: {info['kind']}"
             + (f", format {info['format']}" if info.get("format") else "")
             + (f", task {info['task']}" if info.get("task") else "")]
    if "datasets" in info:
        lines.append(f"  samples: {info['samples']}")
        lines += [f"  {name}: {d['dtype']} ({', '.join(map(str, d['shape']))})"
                  for name, d in sorted(info["datasets"].items())]
    for key in ("backbone", "net", "net_kwargs", "kd_method", "image_shape", "input_shape",
                "num_outputs", "dim_z", "iterations", "progress", "steps", "val", "best_step",
                "log_records"):
        if info.get(key) not in (None, {}, []):
            lines.append(f"  {key.replace('_', ' ')}: {_short(info[key])}")
    if info.get("parameters") is not None:
        lines.append(f"  parameters: {info['parameters']:,} in {info['tensors']} tensors")
    labels = info.get("labels")
    if labels:
        if "class_counts" in labels:
            names = labels.get("class_names") or range(len(labels["class_counts"]))
            counts = ", ".join(f"{n}: {c}" for n, c in zip(names, labels["class_counts"]))
            lines.append(f"  classes: {labels['num_classes']} ({_short(counts)})")
        elif "declared_range" in labels or "min" in labels:
            seen = (f"{labels['min']:g} .. {labels['max']:g} ({labels['distinct']} distinct)"
                    if "min" in labels else "")
            declared = (f"declared {labels['declared_range'][0]:g} .. "
                        f"{labels['declared_range'][1]:g}" if "declared_range" in labels else "")
            lines.append(f"  label range: {'; '.join(t for t in (seen, declared) if t)}")
        else:
            lines.append(f"  classes: {labels['num_classes']}")
    for key in ("config_hash", "source_hash", "resume_key", "seed"):
        if info.get(key) is not None:
            lines.append(f"  {key.replace('_', ' ')}: {info[key]}")
    prov = info.get("provenance")
    if prov:
        lines.append("  provenance: " + ", ".join(f"{k} {prov[k]}" for k in PROVENANCE_SHOWN
                                                  if k in prov))
    return "\n".join(lines)
