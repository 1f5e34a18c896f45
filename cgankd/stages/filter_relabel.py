"""The ``filter_relabel`` stage (METHOD.md section 5): the teacher prunes and relabels fakes.

The teacher scores every pooled fake on un-augmented images (its loss against the fake's
label: cross-entropy, or |clip(y_hat) - y| in original units). Modes:
- ``per_class`` (v3): per class, the rho-quantile of the first ``burnin`` samples' losses is
  the cutoff; the class's samples below it (with ``burnin_separate``, only those after the
  burn-in) are taken in pool order until the class's quota is met (classes stay balanced);
- ``global`` (v1, regression): one rho-quantile over the whole pool;
- ``none``: no filtering (the unprocessed and subsampled rungs of the ablation ladder).
``relabel`` replaces each kept label by the teacher's prediction. Every mode writes exactly
``fake_count`` samples, so every rung of the ladder adds the same number of fakes.

Memory is bounded whatever the pool's size: the pool's images are read in large chunks (one
HDF5 slice each, pinned and copied ahead on CUDA) and scored batch by batch; only per-sample
scalars (label, loss, teacher label, density ratio, index) are held for the whole pool. The
selection is computed from those, then a second chunked pass streams the kept rows to disk.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.device import pick_device
from cgankd.filtering import select_rows
from cgankd.filtering.rho_selection import read_chosen_rho
from cgankd.formats import FAKE_SET, POOL
from cgankd.h5io import StreamingH5Writer, check_h5, get_dataset, open_h5, read_array
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.stages._pool import kept_chunks, score_pool
# The options live torch-free (plan-time checks); FILTER_DEFAULTS stays importable from here.
from cgankd.stage_options.fake import FILTER_DEFAULTS, checked_filter_options  # noqa: F401
from cgankd.train.model_file import label_scale_of, load_model

POOL_SCALARS = ("labels", "density_ratio", "index")  # per-sample columns held for the whole pool


def _write_kept(pool_h5: str | Path, out_h5: str | Path, kept: np.ndarray,
                columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any],
                chunk_rows: int | None, batch_size: int) -> None:
    """Stream images[kept] and the kept rows of ``columns`` to ``out_h5``, chunk by chunk.

    ``kept`` is sorted; ``columns`` hold one value per kept row, in that order. The chunks
    are the scoring pass's (same rows, same rounding), so memory peaks at the same size.
    """
    with open_h5(pool_h5) as f:
        images = get_dataset(f, "images")
        image_tail, image_dtype = images.shape[1:], images.dtype
    specs = {"images": (image_tail, image_dtype),
             **{name: (values.shape[1:], values.dtype) for name, values in columns.items()}}
    with StreamingH5Writer(out_h5, specs, attrs, volatile_provenance(),
                           kind=FAKE_SET) as writer:
        for where, chunk in kept_chunks(pool_h5, kept, ["images"], chunk_rows, batch_size):
            writer.append(images=chunk["images"],
                          **{name: values[where] for name, values in columns.items()})


def run(pool: str | Path, teacher: str | Path, fakes: str | Path, *,
        options: Mapping[str, Any] | None, fake_count: int, seed: int,
        device: str = "auto", source_hash: str = "",
        chunk_rows: int | None = None,
        rho_selection: str | Path | None = None) -> dict[str, Any]:
    """Filter and relabel the ``pool`` with the model file ``teacher`` into exactly
    ``fake_count`` fakes, written to ``fakes``; returns the summary.

    ``rho_selection`` (the select_rho rule's JSON, given to the final rung) replaces the
    options' rho by the one chosen on validation.

    ``chunk_rows`` (images per read; default: h5io.READ_CHUNK_BYTES worth, rounded up to a
    multiple of batch_size) only bounds memory: the output does not depend on it.
    """
    opts = checked_filter_options(options)
    if rho_selection is not None:
        opts["rho"] = read_chosen_rho(rho_selection)
    if opts["mode"] == "none":  # an unfiltered rung records and reports no rho it did not use
        opts = {key: value for key, value in opts.items()
                if key not in ("rho", "burnin", "burnin_separate")}
    dev = pick_device(device)
    batch_size = int(opts["batch_size"])
    with open_h5(pool) as f:
        # the columns and attributes filtering reads; one clear line if one is missing or short
        pool_attrs = check_h5(f, POOL, ("images", *POOL_SCALARS), attrs=("task",))
        columns = {k: read_array(f, k) for k in POOL_SCALARS}
    task = pool_attrs["task"]
    teacher_net, meta = load_model(teacher, dev)
    scale = label_scale_of(meta) if task == "regression" else None
    labels = columns["labels"]
    losses, teacher_labels = score_pool(pool, teacher_net, labels, task, scale, batch_size,
                                        chunk_rows, dev)
    num_classes = int(pool_attrs["num_classes"]) if task == "classification" else None
    kept, cutoffs, _ = select_rows(losses, labels, opts, task, fake_count, num_classes,
                                   np.random.default_rng(seed))
    if task == "classification":
        agreement = float(100.0 * (teacher_labels == labels).mean())
    else:
        agreement = float(losses.mean())  # regression: mean |teacher - label|, original units
    final = teacher_labels[kept] if opts["relabel"] else labels[kept]
    summary = {
        "task": task, "mode": opts["mode"], "rho": opts.get("rho"),
        "relabel": bool(opts["relabel"]), "count": int(fake_count), "pool": int(len(labels)),
        "cutoffs": cutoffs, "teacher_loss_mean_pool": float(losses.mean()),
        "teacher_loss_mean_kept": float(losses[kept].mean()),
        "labels_changed": int((final != labels[kept]).sum()),
        ("teacher_agreement_pool" if task == "classification" else "teacher_mae_pool"): agreement,
    }
    if task == "classification":
        summary["teacher_agreement_kept"] = float(100.0 * (teacher_labels[kept] ==
                                                           labels[kept]).mean())
        summary["kept_per_class"] = np.bincount(labels[kept], minlength=num_classes).tolist()
    attrs = {k: v for k, v in pool_attrs.items() if k not in ("acceptance",)}
    attrs.update(summary=summary, filter_options=opts, source_hash=source_hash,
                 config_hash=config_hash({"options": opts, "count": fake_count, "seed": seed,
                                          "pool": pool_attrs.get("config_hash")}))
    _write_kept(pool, fakes, kept, {
        "labels": final, "label_original": labels[kept], "teacher_label": teacher_labels[kept],
        "teacher_loss": losses[kept].numpy().astype(np.float32),
        "density_ratio": columns["density_ratio"][kept], "index": columns["index"][kept]},
        attrs, chunk_rows, batch_size)
    return summary
