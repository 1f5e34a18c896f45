"""The ``subsample`` stage (METHOD.md section 4): a pool of generated samples per class/label.

``method: cdrrs`` keeps each proposal with probability psi / M (density-ratio rejection
sampling, M the running max of psi after a burn-in, whose proposals are candidates too unless
``reuse_burnin`` is off). ``method: none`` is the unprocessed ablation: the same loop with
psi = 1, so every proposal is kept and the file has the same layout. Accepted samples stream
to HDF5 batch by batch; memory does not grow with the count (the burn-in, at most n_burnin
samples, is the largest thing held).
Regression samples are drawn on a grid of target labels (``label_grid``: n midpoints of the
label range, the integers or a linspace in label units, or the test split's distinct labels); with ``label_window`` each proposal
is generated at y' ~ U[y - zeta, y + zeta] and kept only if the autoencoder's predicted label
falls inside that window (zeta = zeta_mult * kappa_base, the CcGAN's vicinity width).
``psi_label: target`` (published) scores psi(h | y) at the target y and stores the kept sample
with y, as the authors' sampler does (UBCDingXin/cDR-RS RC-49/cDR-RS/main.py:228-231 draws y',
278 labels the batch y, 449 scores it at y, 466 returns it with y; the sources are listed at
PSI_LABELS in cgankd/stage_options/fake.py); ``drawn`` scores and stores the drawn y'.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cgankd.conventions import to_uint8
from cgankd.device import pick_device, seed_everything
from cgankd.dre.dre_file import load_dre
from cgankd.errors import CgankdInputError
from cgankd.formats import POOL
from cgankd.fake.source import FakeSource
from cgankd.h5io import StreamingH5Writer, atomic_path, open_h5, read_array
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.sampling import in_window, rejection_sample, window_labels
# The options live torch-free (plan-time checks); SUBSAMPLE_DEFAULTS stays importable from here.
from cgankd.stage_options.fake import (SUBSAMPLE_DEFAULTS,  # noqa: F401
                                       TEST_LABELS, checked_subsample_options)

GRID = "subsample.options.label_grid"
GRID_TOLERANCE = 1e-6  # normalised: a grid end on the range's end is not "outside" by rounding


def grid_labels(grid: Any, scale: Any, test_labels: str | Path | None = None) -> np.ndarray:
    """The regression targets of ``grid`` (checked by the options), normalised to [0, 1] by
    ``scale``; every label must lie in the training label range the generator learnt."""
    if isinstance(grid, int):
        return (np.arange(grid, dtype=np.float64) + 0.5) / grid  # midpoints, as before
    if grid == TEST_LABELS:
        if test_labels is None:
            raise CgankdInputError(f"{GRID}: {TEST_LABELS} needs the test split file")
        with open_h5(test_labels) as f:
            raw = np.unique(read_array(f, "labels").astype(np.float64))
    elif "integers" in grid:
        lo, hi = grid["integers"]
        raw = np.arange(lo, hi + 1, dtype=np.float64)
    else:
        lo, hi, n = grid["linspace"]
        lo = scale.low if lo == "min" else lo
        hi = scale.high if hi == "max" else hi
        raw = np.linspace(float(lo), float(hi), int(n))
    labels = scale.normalise(raw)
    outside = (labels < -GRID_TOLERANCE) | (labels > 1 + GRID_TOLERANCE)
    if outside.any():
        raise CgankdInputError(
            f"{GRID}: label {raw[outside][0]:.6g} lies outside the training label range "
            f"[{scale.low:.6g}, {scale.high:.6g}] the generator learnt")
    return labels.clip(0, 1)


def _targets(source: FakeSource, opts: Mapping[str, Any], test_labels: str | Path | None
             ) -> tuple[torch.Tensor, int]:
    """(target labels, samples per target): class ids, or the regression grid in [0, 1]."""
    if source.task == "classification":
        return torch.arange(source.num_classes), int(opts["per_class"])
    grid, quota = opts["label_grid"], int(opts["per_label"])
    if isinstance(grid, int):  # float32 midpoints computed as they always were (same draws)
        return (torch.arange(grid, dtype=torch.float32) + 0.5) / grid, quota
    grid_targets = grid_labels(grid, source.label_scale, test_labels).astype(np.float32)
    return torch.from_numpy(grid_targets), quota


def run(generator: str | Path, dre: str | Path | None, pool: str | Path,
        stats: str | Path, *, options: Mapping[str, Any] | None, seed: int,
        device: str = "auto", source_hash: str = "", progress: bool = True,
        test_labels: str | Path | None = None) -> dict[str, Any]:
    """Writes the ``pool`` drawn from ``generator`` (scored by the ``dre`` model for cdrrs) and
    its acceptance ``stats``; ``test_labels`` (the test split) only for ``label_grid:
    test_labels``."""
    opts = checked_subsample_options(options)
    dev = pick_device(device)
    gen = seed_everything(seed)
    source = FakeSource(generator, dev)
    task, scale = source.task, source.label_scale
    use_dre = opts["method"] == "cdrrs"
    if use_dre and dre is None:
        raise CgankdInputError("subsample.method: cdrrs needs the fit_dre model")
    extractor = psi = class_code = None  # stay None for method none: nothing is scored
    if use_dre:
        extractor, psi, class_code, _ = load_dre(dre, dev)
    window = task == "regression" and use_dre and bool(opts["label_window"])
    at_target = opts["psi_label"] == "target"  # psi's label and the stored one: y, not y'
    zeta = float(opts["zeta_mult"]) * float(source.meta.get("kappa_base", 0.0)) if window else 0.0
    if window and zeta <= 0:
        raise CgankdInputError("subsample.label_window: the generator records no kappa_base")

    def code_of(labels: torch.Tensor) -> torch.Tensor:
        return class_code(labels.long()) if task == "classification" \
            else source.label_code(labels)

    targets, quota = _targets(source, opts, test_labels)
    c, res = source.channels, source.resolution
    attrs = {"task": task, "method": opts["method"], "options": opts, "seed": seed,
             "source_hash": source_hash,
             "config_hash": config_hash({"options": opts, "seed": seed})}
    attrs.update({"num_classes": source.num_classes} if task == "classification"
                 else {**scale.as_dict(), "zeta": zeta})
    specs = {"images": ((c, res, res), np.uint8),
             "labels": ((), np.int64 if task == "classification" else np.float32),
             "target": ((), np.int64 if task == "classification" else np.float32),
             "density_ratio": ((), np.float32), "index": ((), np.int64)}
    per_target = []
    with StreamingH5Writer(pool, specs, attrs, volatile_provenance(), kind=POOL) as writer:
        for target in tqdm(targets, desc=f"subsample ({opts['method']})", disable=not progress,
                           mininterval=5):
            def propose(n: int, target=target):
                """n proposals at ``target`` with their psi, scored once and carried along."""
                drawn = (window_labels(float(target), zeta, n, gen) if window
                         else target.repeat(n)).to(dev)
                x = source.images(drawn, gen)
                labels = target.repeat(n).to(dev) if at_target else drawn
                if not use_dre:
                    return x, labels, torch.ones(n, device=dev)
                with torch.no_grad():
                    out = extractor(x)
                    r = psi(out[1], code_of(labels))
                    if window:  # the autoencoder's label must agree with the window
                        r = r * in_window(out[2].clamp(0, 1), float(target), zeta).float()
                return x, labels, r

            def sink(batch, target=target):
                x, labels, r = batch
                raw = labels.cpu().numpy() if task == "classification" \
                    else scale.denormalise(labels.cpu().numpy())
                tgt = target.item() if task == "classification" \
                    else float(scale.denormalise(target.item()))
                writer.append(images=to_uint8(x).cpu().numpy(), labels=raw,
                              target=np.full(len(labels), tgt),
                              density_ratio=(r if use_dre else torch.full_like(r, float("nan")))
                              .cpu().numpy(),
                              index=np.arange(writer.rows, writer.rows + len(labels)))

            name = f"class {int(target)}" if task == "classification" \
                else f"label {float(scale.denormalise(target.item())):.4g}"
            # psi = 1 for method none: M = 1 after one proposal, every proposal is kept
            result = rejection_sample(propose, lambda batch: batch[2], quota,
                                      batch_size=int(opts["batch_size"]),
                                      n_burnin=int(opts["n_burnin"]) if use_dre else 1,
                                      max_batches=int(opts["max_batches"]), generator=gen,
                                      reuse_burnin=bool(opts["reuse_burnin"]), name=name,
                                      sink=sink)
            per_target.append({**result.stats, "target": name})
        writer.attrs["acceptance"] = per_target
    summary = {"method": opts["method"], "rows": sum(s["accepted"] for s in per_target),
               "acceptance_rate_mean": float(np.mean([s["acceptance_rate"]
                                                      for s in per_target])),
               "per_target": per_target}
    with atomic_path(stats) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary
