"""Quality of a generated HDF5 set, measured in a metric net's feature space (METHOD.md section 7).

The metric net is any model file written by ``cgankd.train.stages.train_model``; the pipeline
trains a dedicated one on the real train+val images, apart from the teacher, so the teacher's
filtering is not judged in its own feature space. Fake files hold ``images`` (uint8 NCHW) and
``labels`` (class ids, or raw regression labels in original units); real is a split file.

Classification: FID (all images), Intra-FID (mean over classes of the per-class FID) and label
agreement (% of fakes whose metric-net argmax is their assigned class). Regression: FID, label
score (mean |metric-net prediction - assigned label|, original units) and FID per equal-width
window of the label range. Groups (classes, windows) with fewer than ``min_per_class`` images
on either side get ``fid: null`` and are left out of the means.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.device import pick_device
from cgankd.errors import CgankdInputError
from cgankd.h5io import atomic_path, decode_attrs, open_h5, read_array
from cgankd.metrics.fid import embed_with_outputs, feature_stats, frechet_distance
from cgankd.train.model_file import label_scale_of, load_model

DEFAULT_BATCH_SIZE = 256


def _embed_file(net, meta: dict[str, Any], path: str | Path, batch_size: int,
                device) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], tuple]:
    """(features, outputs, labels, attrs, image shape (C, H, W)) of one HDF5 file, streamed."""
    with open_h5(path) as f:
        if "images" not in f:
            raise CgankdInputError(f"{path}: missing dataset 'images'; found {sorted(f.keys())}")
        images = f["images"]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise CgankdInputError(f"{path}: 'images' must be uint8 (N, C, H, W), got "
                                   f"{images.dtype} {images.shape}")
        if images.shape[1] != int(meta["in_channels"]):
            raise CgankdInputError(f"{path}: images have {images.shape[1]} channels, the metric "
                                   f"net expects {meta['in_channels']}")
        labels = read_array(f, "labels")
        if len(labels) != len(images):
            raise CgankdInputError(f"{path}: {len(images)} images but {len(labels)} labels")
        if len(images) < 2:
            raise CgankdInputError(f"{path}: FID needs at least 2 images, found {len(images)}")
        attrs = decode_attrs(f.attrs)
        if attrs.get("task", meta["task"]) != meta["task"]:
            raise CgankdInputError(f"{path}: task {attrs['task']!r} but the metric net is a "
                                   f"{meta['task']} net")
        try:
            feats, outs = embed_with_outputs(net, images, batch_size, device)
        except OSError as err:
            raise CgankdInputError(f"{path}: 'images' is unreadable (corrupt or truncated?): "
                                   f"{str(err).splitlines()[0]}") from None
        return feats, outs, labels, attrs, tuple(images.shape[1:])


def _fid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _group_fids(real_feats: np.ndarray, real_groups: np.ndarray, fake_feats: np.ndarray,
                fake_groups: np.ndarray, n_groups: int, min_count: int) -> list[dict[str, Any]]:
    """Per group g in 0..n_groups-1: sample counts and FID (None when either side is too small)."""
    rows = []
    for g in range(n_groups):
        in_real, in_fake = real_groups == g, fake_groups == g
        n_real, n_fake = int(in_real.sum()), int(in_fake.sum())
        fid = (_fid(real_feats[in_real], fake_feats[in_fake])
               if min(n_real, n_fake) >= min_count else None)
        rows.append({"n_real": n_real, "n_fake": n_fake, "fid": fid})
    return rows


def _mean_fid(rows: list[dict[str, Any]]) -> float | None:
    values = [row["fid"] for row in rows if row["fid"] is not None]
    return float(np.mean(values)) if values else None


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


def _shuffled(labels: np.ndarray) -> np.ndarray:
    """The labels in a fixed random order (seeded: the report is deterministic)."""
    return labels[np.random.default_rng(0).permutation(len(labels))]


def _classification_quality(real, fake, meta, real_attrs, real_h5, fake_h5,
                            min_count: int) -> dict[str, Any]:
    (real_feats, real_out, real_labels), (fake_feats, fake_out, fake_labels) = real, fake
    num_classes = int(meta["num_outputs"])
    real_ids = _class_ids(real_labels, num_classes, real_h5)
    fake_ids = _class_ids(fake_labels, num_classes, fake_h5)
    names = real_attrs.get("class_names")
    if not isinstance(names, list) or len(names) != num_classes:
        names = [str(k) for k in range(num_classes)]
    per_class = _group_fids(real_feats, real_ids, fake_feats, fake_ids, num_classes, min_count)
    for k, row in enumerate(per_class):
        row.update({"class": k, "name": names[k]})
    return {
        "intra_fid": _mean_fid(per_class),
        "intra_fid_classes": sum(row["fid"] is not None for row in per_class),
        "per_class": per_class,
        "label_agreement": float(100.0 * np.mean(fake_out.argmax(1) == fake_ids)),
        # the same images with their labels shuffled: what agreement means by chance
        "label_agreement_shuffled": float(100.0 * np.mean(
            fake_out.argmax(1) == _shuffled(fake_ids))),
        "metric_net_accuracy_real": float(100.0 * np.mean(real_out.argmax(1) == real_ids)),
    }


def _regression_quality(real, fake, meta, real_attrs, min_count: int,
                        n_windows: int) -> dict[str, Any]:
    (real_feats, real_out, real_labels), (fake_feats, fake_out, fake_labels) = real, fake
    scale = label_scale_of(meta)

    def predicted(outputs: np.ndarray) -> np.ndarray:
        return scale.predicted(outputs.astype(np.float64))

    real_y = np.asarray(real_labels, np.float64).reshape(-1)
    fake_y = np.asarray(fake_labels, np.float64).reshape(-1)
    fake_err = np.abs(predicted(fake_out) - fake_y)
    # Equal-width windows of the metric net's label range; labels outside go to the end windows.
    edges = np.linspace(scale.low, scale.high, n_windows + 1)

    def window_of(y: np.ndarray) -> np.ndarray:
        return np.clip(np.digitize(y, edges[1:-1]), 0, n_windows - 1)

    windows = _group_fids(real_feats, window_of(real_y), fake_feats, window_of(fake_y),
                          n_windows, min_count)
    for w, row in enumerate(windows):
        row.update({"low": float(edges[w]), "high": float(edges[w + 1])})
    return {
        "label_score": float(fake_err.mean()),
        "label_score_std": float(fake_err.std()),
        # the same images scored against shuffled labels: a generator that ignores its label
        "label_score_shuffled": float(np.abs(predicted(fake_out) - _shuffled(fake_y)).mean()),
        "label_unit": real_attrs.get("label_unit", ""),
        "metric_net_mae_real": float(np.abs(predicted(real_out) - real_y).mean()),
        "window_fid_mean": _mean_fid(windows),
        "window_fid_windows": sum(row["fid"] is not None for row in windows),
        "windows": windows,
    }


def sample_quality(metric_model_path: str | Path, real_h5: str | Path, fake_h5: str | Path, *,
                   device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                   min_per_class: int = 2, n_windows: int = 10) -> dict[str, Any]:
    """FID and its per-class / per-window parts, plus label agreement or label score.

    ``min_per_class`` (>= 2, a covariance needs two samples) is the fewest images a class or a
    label window needs on each side for its FID to be computed.
    """
    if min_per_class < 2:
        raise CgankdInputError(f"min_per_class must be >= 2 (a covariance needs two samples), "
                               f"got {min_per_class}")
    if n_windows < 1:
        raise CgankdInputError(f"n_windows must be >= 1, got {n_windows}")
    dev = pick_device(device)
    net, meta = load_model(metric_model_path, dev)
    real_feats, real_out, real_labels, real_attrs, real_shape = _embed_file(
        net, meta, real_h5, batch_size, dev)
    fake_feats, fake_out, fake_labels, _, fake_shape = _embed_file(
        net, meta, fake_h5, batch_size, dev)
    if real_shape != fake_shape:
        raise CgankdInputError(f"{fake_h5}: images are {fake_shape} (C, H, W) but the real ones "
                               f"in {real_h5} are {real_shape}")
    real = (real_feats, real_out, real_labels)
    fake = (fake_feats, fake_out, fake_labels)
    result = {
        "task": meta["task"], "metric_model": str(metric_model_path), "metric_net": meta["net"],
        "real_h5": str(real_h5), "fake_h5": str(fake_h5),
        "n_real": len(real_feats), "n_fake": len(fake_feats),
        "feature_dim": int(real_feats.shape[1]), "min_per_class": min_per_class,
        "fid": _fid(real_feats, fake_feats),
    }
    if meta["task"] == "classification":
        result.update(_classification_quality(real, fake, meta, real_attrs, real_h5, fake_h5,
                                               min_per_class))
    else:
        result["n_windows"] = n_windows
        result.update(_regression_quality(real, fake, meta, real_attrs, min_per_class,
                                          n_windows))
    return result


def write_quality(out_json: str | Path, metric_model_path: str | Path, real_h5: str | Path,
                  fake_h5: str | Path, **options: Any) -> dict[str, Any]:
    """Run ``sample_quality`` and write its result to ``out_json`` atomically; return it."""
    result = sample_quality(metric_model_path, real_h5, fake_h5, **options)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
