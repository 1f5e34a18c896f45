"""What the GAN is conditioned on, and how a step's labels are drawn.

The two tasks differ only here. Classification: real images with their classes, fakes at
uniformly drawn classes, class-conditional nets. Regression (CcGAN): vicinal batches (target y*,
real images near y*, fakes at labels near y*, optional soft weights), nets conditioned on the
normalised label itself (``label_input: nli``) or on its embedding by a pretrained ``Y2H``
(``label_input: ili``, pretrained here before the GAN and kept in its checkpoint).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from cgankd import distributed
from cgankd.conventions import LabelScale
from cgankd.errors import CgankdInputError
from cgankd.gan.label_embedding import DIM_EMBED, Y2H, pretrain_label_embedding
from cgankd.gan.vicinity import VicinalSampler, nu_from_kappa, rule_of_thumb
from cgankd.h5io import Split
from cgankd.train.resume import Resume

GRID_COLUMNS = 10  # samples per class row / labels per sweep row
GRID_MAX_ROWS = 20  # classes shown when there are more
ILI_CHECKPOINT = "ili_checkpoint.pt"  # the label embedding's pretraining (label_input: ili)
ILI_CURVES = "ili_pretrain.json"


class DBatch(NamedTuple):
    """What one D step compares: real images and fakes, and the labels D is told."""

    real_rows: torch.Tensor  # training-set rows of the real images
    real_cond: torch.Tensor  # label D sees with each real image
    fake_label: torch.Tensor  # label each fake is generated at
    fake_cond: torch.Tensor  # label D sees with each fake
    real_weight: torch.Tensor | None
    fake_weight: torch.Tensor | None


class ClassLabels:
    """Classification: real images with their classes, fakes at uniformly drawn classes."""

    def __init__(self, labels: np.ndarray, num_classes: int):
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.num_classes = num_classes

    def d_batch(self, n: int, rng: torch.Generator) -> DBatch:
        rows = torch.randint(len(self.labels), (n,), generator=rng)
        fake = self.g_labels(n, rng)
        return DBatch(rows, self.labels[rows], fake, fake, None, None)

    def g_labels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randint(self.num_classes, (n,), generator=rng)

    def grid_labels(self) -> tuple[torch.Tensor, int]:
        rows = min(self.num_classes, GRID_MAX_ROWS)
        classes = torch.linspace(0, self.num_classes - 1, rows).round().long()
        return classes.repeat_interleave(GRID_COLUMNS), rows


class VicinalLabels:
    """Regression: CcGAN vicinal batches, D conditioned on the target label y* for both."""

    def __init__(self, sampler: VicinalSampler):
        self.sampler = sampler

    def d_batch(self, n: int, rng: torch.Generator) -> DBatch:
        b = self.sampler.sample(n, rng)
        soft = self.sampler.kind == "soft"
        return DBatch(b.real_rows, b.target, b.fake_label, b.target,
                      b.real_weight if soft else None, b.fake_weight if soft else None)

    def g_labels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return self.sampler.sample_targets(n, rng)

    def grid_labels(self) -> tuple[torch.Tensor, int]:
        """A sweep of GRID_COLUMNS labels over [0, 1] per row, one row per fixed z."""
        return torch.linspace(0, 1, GRID_COLUMNS).repeat(GRID_COLUMNS), GRID_COLUMNS


@dataclass
class GanSetup:
    """Everything built from the split and the options before the first iteration."""

    task: str
    condition: str  # class | scalar | vector (see models.py)
    images: torch.Tensor  # uint8 (N, C, H, W) on the device
    labels: ClassLabels | VicinalLabels
    gen_kwargs: dict[str, Any]
    disc_kwargs: dict[str, Any]
    label_meta: dict[str, Any]  # num_classes, or label_min/label_max and vicinity parameters


def _check_images(split: Split) -> tuple[int, int]:
    _, channels, height, width = split.images.shape
    if height != width:
        raise CgankdInputError(f"GAN training needs square images, got {height}x{width}")
    if len(split) < 2:
        raise CgankdInputError(f"GAN training needs at least 2 images, got {len(split)}")
    return channels, height


def _class_setup(split: Split) -> tuple[ClassLabels, dict[str, Any]]:
    if "num_classes" not in split.attrs:
        raise CgankdInputError("classification split has no 'num_classes' attribute")
    num_classes = int(split.attrs["num_classes"])
    counts = np.bincount(split.labels.astype(np.int64), minlength=num_classes) \
        if split.labels.min() >= 0 else None
    if counts is None or len(counts) > num_classes:
        raise CgankdInputError(f"class labels must lie in [0, {num_classes}), found "
                               f"{int(split.labels.min())}..{int(split.labels.max())}")
    if (counts == 0).any():
        raise CgankdInputError(f"class {int(np.argmin(counts))} has no training images: a "
                               f"conditional GAN cannot learn it (label counts {counts.tolist()})")
    return ClassLabels(split.labels, num_classes), {"num_classes": num_classes}


def _regression_setup(split: Split, opts: dict[str, Any]) -> tuple[VicinalLabels, dict[str, Any]]:
    for key in ("label_min", "label_max"):
        if key not in split.attrs:
            raise CgankdInputError(f"regression split has no {key!r} attribute")
    scale = LabelScale.from_attrs(split.attrs)
    y = scale.normalise(split.labels.astype(np.float64))
    if y.min() < -1e-6 or y.max() > 1 + 1e-6:
        raise CgankdInputError(f"regression labels {split.labels.min()}..{split.labels.max()} "
                               f"fall outside label_min/label_max {scale.low}..{scale.high}")
    sigma, kappa_base = rule_of_thumb(y, opts["m_kappa"])
    sigma = sigma if opts["sigma"] is None else float(opts["sigma"])
    kappa_base = kappa_base if opts["kappa"] is None else float(opts["kappa"])
    width = kappa_base if opts["vicinity"] == "hard" else nu_from_kappa(kappa_base)
    sampler = VicinalSampler(y, sigma, width, opts["vicinity"], opts["vicinity_max_retries"],
                             clip_label=opts["clip_label"])
    meta = {**scale.as_dict(), "sigma": sigma, "kappa_base": kappa_base,
            "vicinity": opts["vicinity"],
            **({"nu": width} if opts["vicinity"] == "soft" else {"kappa": width})}
    return VicinalLabels(sampler), meta


def build_setup(split: Split, opts: dict[str, Any], device: torch.device) -> GanSetup:
    """Check the split's images and labels; the label strategy and the nets' arguments."""
    channels, resolution = _check_images(split)
    task = split.task
    if task == "classification":
        labels, meta = _class_setup(split)
        condition = "class"
    else:
        labels, meta = _regression_setup(split, opts)
        condition = "scalar" if opts["label_input"] == "nli" else "vector"
    common = {"resolution": resolution, "channels": channels, "condition": condition,
              "num_classes": meta.get("num_classes", 0),
              "dim_cond": DIM_EMBED if condition == "vector" else 0,
              "attention_res": opts["attention_res"]}
    # Hierarchical z feeds z chunks to vector-conditioned BNs; NLI's BNs take no condition.
    hier = bool(opts["hier"]) and condition != "scalar"
    gen_kwargs = {**common, "dim_z": opts["dim_z"], "ch": opts["g_ch"], "mults": opts["g_mults"],
                  "dim_shared": opts["dim_shared"], "hier": hier,
                  "native_resolution": opts["native_resolution"]}
    disc_kwargs = {**common, "ch": opts["d_ch"], "mults": opts["d_mults"]}
    images = torch.as_tensor(split.images).to(device)
    return GanSetup(task, condition, images, labels, gen_kwargs, disc_kwargs, meta)


def label_embedding(split: Split, opts: dict[str, Any], device: torch.device,
                    checkpoint: Mapping[str, Any] | None, out: Path, seed: int,
                    progress: bool, world: distributed.World,
                    resume: Resume) -> nn.Module | None:
    """The frozen ``Y2H`` of ``label_input: ili`` (None otherwise): restored from the GAN's
    ``checkpoint`` when it resumes, else pretrained (resumably, in ``out``)."""
    if split.task != "regression" or opts["label_input"] != "ili":
        return None
    if checkpoint is not None:
        y2h = Y2H().to(device)
        y2h.load_state_dict(checkpoint["y2h"])
        return y2h.eval().requires_grad_(False)
    ili = Resume(out / ILI_CHECKPOINT, resume.parts, desc="ILI", every=1,
                 seconds=opts["checkpoint_seconds"], device=device)
    _, y2h, curves = pretrain_label_embedding(
        split, opts, device, generator=torch.Generator().manual_seed(seed + 1),
        progress=progress and world.main, resume=ili)
    # Every rank pretrains from the same seed; rank 0's copy is the one all condition on, so
    # that GPU-dependent rounding cannot give the ranks different label embeddings.
    world.broadcast_module(y2h)
    if world.main:
        (out / ILI_CURVES).write_text(json.dumps(curves))
    return y2h
