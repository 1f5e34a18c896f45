"""The ``train_quality_extractor`` stage (``quality.features: extractor``): a feature space for
FID, precision / recall and density / coverage that is not the label's.

The metric net judges labels: it is trained to predict them, and for regression its pooled
features narrow to little more than the label itself (on digits_angle two directions carry
95 % of their variance on the test images), so FID there measures angles, not images. This
stage trains the cDR-RS extractor architecture anew on the real training images, with the
quality section's seed and its own options: for regression the sparse autoencoder, whose
bottleneck must reconstruct each image; for classification the ResNet-34 trunk. It is apart
from fit_dre's extractor, so cDR-RS's subsampling is not judged in the feature space it
selected in.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cgankd.device import pick_device, seed_everything
from cgankd.formats import QUALITY_EXTRACTOR
from cgankd.h5io import read_split
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.stage_options.dre import checked_extractor_options
from cgankd.stages._extractor import setup_extractor, train_extractor
from cgankd.train.resume import key_parts, save_checkpoint


def run(train: str | Path, val: str | Path, model: str | Path, history: str | Path, *,
        options: Mapping[str, Any] | None, seed: int, device: str = "auto",
        accel: Mapping[str, Any] | None = None, source_hash: str = "",
        progress: bool = True) -> dict[str, Any]:
    """Train the extractor ``options`` (quality.extractor) describe on the split ``train``,
    selected on ``val``; write it to ``model``, its training log to ``history`` (JSON lines)."""
    opts = checked_extractor_options(options)
    dev = pick_device(device)
    seed_everything(seed)
    train_split = read_split(train)
    setup = setup_extractor(train_split, read_split(val), opts)
    stable = {"options": opts, "seed": seed, "data_hash": train_split.attrs.get("config_hash"),
              "source_hash": source_hash}
    model = Path(model)
    trained = train_extractor(setup, opts, seed=seed, device=dev, accel=accel,
                              checkpoint_path=model.with_suffix(".resume.pt"),
                              log_path=history,
                              fingerprint=key_parts(stable, {"train": train, "val": val}),
                              desc="quality extractor", progress=progress)
    meta = {"format": QUALITY_EXTRACTOR.tag, "task": setup.task,
            "extractor_kwargs": setup.kwargs,
            "extractor": {k: v.cpu() for k, v in setup.extractor.state_dict().items()},
            "extractor_val": trained["extractor_val"], "config_hash": config_hash(stable),
            "options": opts, "seed": seed, "provenance": volatile_provenance()}
    if setup.scale is not None:
        meta.update(setup.scale.as_dict())
    save_checkpoint(model, meta)
    return {"extractor_val": trained["extractor_val"]}
