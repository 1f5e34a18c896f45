"""The DRE file format (``dre/dre.pt``, ``cgankd.dre/1``): what ``fit_dre`` writes and
``subsample`` reads; and the quality stage's own extractor (``cgankd.quality-extractor/1``,
the same extractor fields without the density-ratio net).

The file holds the frozen feature extractor, the density-ratio net psi and, for
classification, the label code, each as a state dict with the arguments that rebuild it, plus
the options and label range; plain values only, so it loads with ``weights_only=True``. Kept
apart from the fit so that the reader (and the hash of the stage that reads) does not carry
the training code.
"""

from pathlib import Path

import torch

from cgankd.dre.models import ClassFeatureExtractor, ClassLabelCode, DRMLP, RegressionAutoencoder
from cgankd.formats import DRE, QUALITY_EXTRACTOR, check_fields
from cgankd.train.resume import load_checkpoint

FORMAT = DRE.tag  # declared in cgankd.formats


def build_extractor(task: str, in_channels: int, resolution: int, num_classes: int | None,
                    feat_shape: tuple[int, int, int], width: int) -> torch.nn.Module:
    if task == "classification":
        return ClassFeatureExtractor(in_channels, num_classes, feat_shape, width=width)
    return RegressionAutoencoder(in_channels, resolution, feat_shape, width=width)


def stored_extractor(meta: dict, device: torch.device) -> torch.nn.Module:
    """The extractor a file's ``extractor_kwargs`` and ``extractor`` state describe, frozen."""
    kwargs = dict(meta["extractor_kwargs"])
    kwargs["feat_shape"] = tuple(kwargs["feat_shape"])  # stored as a list (plain checkpoint)
    extractor = build_extractor(**kwargs)
    extractor.load_state_dict(meta["extractor"])
    return extractor.to(device).eval().requires_grad_(False)


def load_quality_extractor(path: str | Path, device: torch.device):
    """(extractor, meta) from a train_quality_extractor file, frozen, on ``device``."""
    meta = check_fields(load_checkpoint(path, "cpu"), QUALITY_EXTRACTOR, path)
    return stored_extractor(meta, device), meta


def load_dre(path: str | Path, device: torch.device):
    """(extractor, psi, label code or None, meta) from a fit_dre file, frozen, on ``device``."""
    meta = check_fields(load_checkpoint(path, "cpu"), DRE, path)
    extractor = stored_extractor(meta, device)
    psi = DRMLP(**dict(meta["dr_kwargs"], hidden=tuple(meta["dr_kwargs"]["hidden"])))
    psi.load_state_dict(meta["dr"])
    code = None
    if meta["task"] == "classification":
        code = ClassLabelCode(meta["num_classes"])
        code.load_state_dict(meta["label_code"])
        code = code.to(device).eval().requires_grad_(False)
    return (extractor, psi.to(device).eval().requires_grad_(False), code, meta)
