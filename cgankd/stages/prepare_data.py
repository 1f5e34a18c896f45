"""The ``prepare_data`` stage: a configured dataset -> train.h5, val.h5, test.h5.

The parts come from ``cgankd.data.prepare`` (loading and carving, in the order its docstring
gives); here they are converted to the configured channels and resolution, checked, and
written only once all three are ready.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.data.prepare import SPLITS, load_raw, make_splits, split_attrs
from cgankd.data.registry import Part
from cgankd.data.resize import resize_images, to_channels
from cgankd.h5io import Split, write_split
from cgankd.provenance import volatile_provenance


def run(data: Mapping[str, Any], outputs: Mapping[str, str | Path],
        source_hash: str = "") -> dict[str, int]:
    """Build the three splits of the ``data`` config section and write them to ``outputs``;
    returns sample counts."""
    missing = set(SPLITS) - set(outputs)
    if missing:
        raise ValueError(f"prepare_data needs output paths for {sorted(missing)}")
    raw = load_raw(data)
    parts = make_splits(raw, data)
    splits = {}
    for name, part in parts.items():
        images = to_channels(part.images, data.get("channels"))
        images = resize_images(images, int(data["resolution"]))
        attrs = split_attrs(raw, data, name, Part(images, part.labels, part.ids))
        attrs["source_hash"] = source_hash
        labels = part.labels.astype(np.int64 if raw.task == "classification" else np.float32)
        splits[name] = Split(images=images, labels=labels, index=part.ids.astype(np.int64),
                             attrs=attrs)
    provenance = volatile_provenance()
    for name in SPLITS:  # everything is validated above: no write starts before all can finish
        write_split(outputs[name], splits[name], provenance)
    return {name: len(s) for name, s in splits.items()}
