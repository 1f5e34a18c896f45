"""Sampling from a trained generator: load ``generator.pt``, generate in memory or to HDF5.

Labels are given as the data stores them: class ids, or raw regression labels (degrees, years),
which are normalised with the generator's own label_min/label_max.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cgankd.conventions import LabelScale, to_uint8
from cgankd.device import pick_device
from cgankd.errors import CgankdInputError
from cgankd.formats import GENERATED_SET, GENERATOR, check_fields
from cgankd.gan.label_embedding import Y2H
from cgankd.gan.models import LabelledGenerator, build_generator
from cgankd.h5io import StreamingH5Writer
from cgankd.provenance import volatile_provenance
from cgankd.train.resume import load_checkpoint

STATE_KEYS = ("state_dict", "y2h_state_dict")  # weights; everything else in the file is metadata
# images per forward pass (generate_to_h5, `cgankd generate`): bounds memory; z is drawn per
# batch, so a seed reproduces the images at the same batch size only
BATCH_SIZE = 500


def load_generator(path: str | os.PathLike, device: str | torch.device = "auto"
                   ) -> tuple[LabelledGenerator, dict[str, Any]]:
    """The EMA generator in eval mode, taking (z, labels normalised as the pipeline does), and
    the file's metadata (task, backbone, kwargs, num_classes or label_min/label_max, options)."""
    blob = check_fields(load_checkpoint(path), GENERATOR, path)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    generator = build_generator(blob["backbone"], **blob["generator_kwargs"])
    generator.load_state_dict(blob["state_dict"])
    y2h = None
    if blob.get("y2h_state_dict") is not None:
        y2h = Y2H()
        y2h.load_state_dict(blob["y2h_state_dict"])
    model = LabelledGenerator(generator, y2h).to(dev).eval().requires_grad_(False)
    meta = {k: v for k, v in blob.items() if k not in STATE_KEYS}
    return model, meta


def normalise_labels(meta: dict[str, Any], labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Raw labels -> what the generator takes; class ids are checked against num_classes."""
    labels = torch.as_tensor(np.asarray(labels))
    if meta["task"] == "classification":
        labels = labels.long()
        k = int(meta["num_classes"])
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise CgankdInputError(f"class labels must lie in [0, {k}), got "
                                   f"{int(labels.min())}..{int(labels.max())}")
        return labels
    return LabelScale.from_attrs(meta).normalise(labels.double()).float()


@torch.no_grad()
def generate_batch(G: LabelledGenerator, meta: dict[str, Any],
                   labels: torch.Tensor | np.ndarray,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] at raw ``labels``, z drawn from ``generator`` (CPU)."""
    y = normalise_labels(meta, labels)
    dim_z = int(meta["generator_kwargs"]["dim_z"])
    z = torch.randn(len(y), dim_z, generator=generator)
    device = next(G.parameters()).device
    return G(z.to(device), y.to(device))


def generate_to_h5(weights: str | os.PathLike, labels: np.ndarray, out_path: str | os.PathLike,
                   *, batch_size: int = BATCH_SIZE, seed: int = 0, device: str = "auto",
                   progress: bool = True) -> int:
    """Generate one image per entry of ``labels`` into ``out_path``, a batch at a time.

    Writes ``images`` uint8 (N, C, H, W), ``labels`` (int64 class ids, or float32 raw
    regression labels as given), ``index`` 0..N-1, and the generator's task and label
    attributes. Deterministic for a seed. Returns N.
    """
    G, meta = load_generator(weights, device)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise CgankdInputError(f"labels to generate must be 1-D, got shape {labels.shape}")
    if batch_size < 1:
        raise CgankdInputError(f"batch_size must be >= 1, got {batch_size}")
    kwargs = meta["generator_kwargs"]
    size, channels = int(kwargs["resolution"]), int(kwargs["channels"])
    label_dtype = np.int64 if meta["task"] == "classification" else np.float32
    attrs = {"task": meta["task"], "generator_config_hash": meta["config_hash"], "seed": seed,
             **({"num_classes": meta["num_classes"]} if meta["task"] == "classification"
                else {"label_min": meta["label_min"], "label_max": meta["label_max"]})}
    specs = {"images": ((channels, size, size), np.uint8), "labels": ((), label_dtype),
             "index": ((), np.int64)}
    rng = torch.Generator().manual_seed(seed)
    with StreamingH5Writer(out_path, specs, attrs, volatile_provenance(),
                           kind=GENERATED_SET) as writer:
        for start in tqdm(range(0, len(labels), batch_size), desc=f"generate {Path(out_path).name}",
                          disable=not progress):
            chunk = labels[start:start + batch_size].astype(label_dtype)
            images = generate_batch(G, meta, chunk, rng)
            writer.append(images=to_uint8(images).cpu().numpy(), labels=chunk,
                          index=np.arange(start, start + len(chunk), dtype=np.int64))
    return len(labels)
