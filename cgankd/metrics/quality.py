"""Quality of a generated HDF5 set, measured in a metric net's feature space (METHOD.md section 7).

The metric net is any model file written by ``cgankd.stages._training``; the pipeline
trains a dedicated one on the real training images (selected on validation), apart from the
teacher, so the teacher's filtering is not judged in its own feature space. Fake files hold
``images`` (uint8 NCHW) and ``labels`` (class ids, or raw regression labels in original
units); real is a split file.

Against the real test split: FID, precision / recall / density / coverage (cgankd/metrics/
manifold.py), each overall and per class (classification) or per equal-width window of the
label range (regression), with Intra-FID / mean window FID the mean of the per-group FIDs;
plus label agreement (% of fakes whose metric-net argmax is their class) or label score (mean
|metric-net prediction - label|, original units). With a reference split (the pipeline gives
the validation split) the same numbers for real-vs-real go under ``reference``, and under
``matched`` the fake set's numbers on subsets with the reference's per-group counts, since
FID, recall and coverage depend on how many samples are compared.

With an extractor file (``quality.features: extractor``, written by the
train_quality_extractor stage) FID and the manifold scores use its features instead, and the
metric net only judges the labels: a regression metric net's features narrow to the label.

Reading the ratios: the metric net has fit its own training images, so in its feature space
they sit apart from held-out real data. Measured on the digits default (1,078 test images,
100 validation): the 200 training images in the fakes' place score a matched FID of 0.42
against the reference's 0.26 (1.6x) and recall 0.72 against 0.93, so a generator that copied
its training set would not reach 1x. The validation split also chose the metric net's
checkpoint, which flatters its label agreement a little.
"""

from pathlib import Path
from typing import Any

import numpy as np

from cgankd.device import pick_device
from cgankd.dre.dre_file import load_quality_extractor
from cgankd.errors import CgankdInputError
from cgankd.formats import SPLIT
from cgankd.h5io import check_h5, open_h5, read_array
from cgankd.metrics.fid import embed_extractor, embed_with_outputs
from cgankd.metrics.measure import (Embedded, Grouping, classification_grouping, measure_matched,
                                    measure_pair, regression_grouping)
# The ``quality.options`` keys and their checks, defined once, torch-free (plan-time checks).
from cgankd.stage_options.quality import (QUALITY_DEFAULTS,  # noqa: F401
                                          checked_quality_options)
from cgankd.train.model_file import label_scale_of, load_model


def _embed_file(net, meta: dict[str, Any], path: str | Path, batch_size: int,
                device, extractor=None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], tuple]:
    """(features, outputs, labels, attrs, image shape (C, H, W)) of one HDF5 file, streamed;
    the features are ``extractor``'s when one is given, else the metric net's."""
    with open_h5(path) as f:
        # fakes from elsewhere may carry no attributes: the task is checked when present
        attrs = check_h5(f, SPLIT, ("images", "labels"), attrs=())
        images = f["images"]
        if images.shape[1] != int(meta["in_channels"]):
            raise CgankdInputError(f"{path}: images have {images.shape[1]} channels, the metric "
                                   f"net expects {meta['in_channels']}")
        labels = read_array(f, "labels")
        if len(images) < 2:
            raise CgankdInputError(f"{path}: FID needs at least 2 images, found {len(images)}")
        if attrs.get("task", meta["task"]) != meta["task"]:
            raise CgankdInputError(f"{path}: task {attrs['task']!r} but the metric net is a "
                                   f"{meta['task']} net")
        try:
            feats, outs = embed_with_outputs(net, images, batch_size, device)
            if extractor is not None:
                feats = embed_extractor(extractor, images, batch_size, device)
        except OSError as err:
            raise CgankdInputError(f"{path}: 'images' is unreadable (corrupt or truncated?): "
                                   f"{str(err).splitlines()[0]}") from None
        return feats, outs, labels, attrs, tuple(images.shape[1:])


def _class_ids(labels: np.ndarray, num_classes: int, path: str | Path) -> np.ndarray:
    ids = np.asarray(labels).reshape(-1)
    if not np.issubdtype(ids.dtype, np.integer):
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            raise CgankdInputError(f"{path}: classification labels must be integer class ids, "
                                   f"got {ids.dtype} values such as {ids[:3].tolist()}")
    ids = ids.astype(np.int64)
    bad = (ids < 0) | (ids >= num_classes)
    if bad.any():
        raise CgankdInputError(f"{path}: label {int(ids[bad][0])} is outside the metric net's "
                               f"{num_classes} classes")
    return ids


def _grouping(meta: dict[str, Any], real_attrs: dict[str, Any], n_windows: int) -> Grouping:
    if meta["task"] == "classification":
        num_classes = int(meta["num_outputs"])
        names = real_attrs.get("class_names")
        if not isinstance(names, list) or len(names) != num_classes:
            names = [str(k) for k in range(num_classes)]
        return classification_grouping(names)
    scale = label_scale_of(meta)
    # equal-width windows of the metric net's label range; labels outside go to the end ones
    return regression_grouping(np.linspace(scale.low, scale.high, n_windows + 1),
                               lambda outputs: scale.predicted(outputs))


def _as_embedded(raw: tuple, grouping: Grouping, path: str | Path) -> Embedded:
    feats, outs, labels = raw[:3]
    if grouping.task == "classification":
        labels = _class_ids(labels, grouping.n_groups, path)
        return Embedded(feats, outs, labels, labels)
    labels = np.asarray(labels, np.float64).reshape(-1)
    inner = np.array([w["low"] for w in grouping.describe[1:]])
    return Embedded(feats, outs, labels, np.digitize(labels, inner).astype(np.int64))


def sample_quality(metric_model_path: str | Path, real_h5: str | Path, fake_h5: str | Path, *,
                   reference_h5: str | Path | None = None,
                   extractor_path: str | Path | None = None, device: str = "auto",
                   **options: Any) -> dict[str, Any]:
    """Every quality number of ``fake_h5`` against ``real_h5`` (see the module docstring).

    ``options``: QUALITY_DEFAULTS overrides. ``reference_h5``: a second real split (the
    validation split) measured in the fakes' place, for the ``reference`` and ``matched``
    sections; without it they are absent. ``extractor_path``: a train_quality_extractor
    file whose features FID and the manifold scores use in place of the metric net's (which
    still judges the labels).
    """
    opts = checked_quality_options(options)
    dev = pick_device(device)
    net, meta = load_model(metric_model_path, dev)
    extractor = None
    if extractor_path is not None:
        extractor, extractor_meta = load_quality_extractor(extractor_path, dev)
        if extractor_meta["task"] != meta["task"]:
            raise CgankdInputError(f"{extractor_path}: a {extractor_meta['task']} extractor "
                                   f"but {metric_model_path} is a {meta['task']} metric net")
    raw = {name: _embed_file(net, meta, path, opts["batch_size"], dev, extractor)
           for name, path in (("real", real_h5), ("fake", fake_h5), ("reference", reference_h5))
           if path is not None}
    paths = {"real": real_h5, "fake": fake_h5, "reference": reference_h5}
    for name in ("fake", "reference"):
        if name in raw and raw[name][4] != raw["real"][4]:
            raise CgankdInputError(f"{paths[name]}: images are {raw[name][4]} (C, H, W) but the "
                                   f"real ones in {real_h5} are {raw['real'][4]}")
    grouping = _grouping(meta, raw["real"][3], opts["n_windows"])
    sets = {name: _as_embedded(r, grouping, paths[name]) for name, r in raw.items()}
    real = sets["real"]
    result = {
        "task": meta["task"], "metric_model": str(metric_model_path), "metric_net": meta["net"],
        # where FID and the manifold scores were measured: the metric net's or an extractor's
        "feature_space": "metric_net" if extractor is None else "extractor",
        "extractor_model": None if extractor_path is None else str(extractor_path),
        "real_h5": str(real_h5), "fake_h5": str(fake_h5), "n_real": len(real),
        "feature_dim": int(real.feats.shape[1]), "min_per_class": opts["min_per_class"],
        "options": opts, **measure_pair(real, sets["fake"], grouping, opts),
    }
    if grouping.task == "classification":
        result["metric_net_accuracy_real"] = float(100.0 * np.mean(real.outs.argmax(1) ==
                                                                   real.labels))
    else:
        result.update(n_windows=opts["n_windows"], label_unit=raw["real"][3].get("label_unit", ""),
                      metric_net_mae_real=float(np.abs(grouping.predicted(
                          real.outs.astype(np.float64)) - real.labels).mean()))
    if "reference" in sets:
        result["reference"] = {"real_h5": str(reference_h5),
                               **measure_pair(real, sets["reference"], grouping, opts)}
        result["matched"] = measure_matched(real, sets["fake"], sets["reference"], grouping,
                                            opts)
    return result
