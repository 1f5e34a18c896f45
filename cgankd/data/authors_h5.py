"""The HDF5 files the cGAN-KD authors distribute (METHOD.md, "Data files").

- RC-49 (v1): ``images_odd/labels_odd`` with row lists ``indx_odd_train``, ``indx_odd_subvalid``,
  ``indx_odd_rest``, and ``images_even/labels_even``. Train = odd-decimal angles' training rows;
  our validation = the authors' ``subvalid`` rows (removed from train); test = the unused odd rows
  plus every even-angle image. Angles in [0, 90) degrees.
- UTKFace v1: ``images/labels`` with ``indx_train``, ``indx_subvalid``, ``indx_test``; v3:
  ``images_train/labels_train/images_test/labels_test`` (validation carved from train). Ages 1..60.
- Steering Angle v3: like UTKFace v3; degrees in about [-88, 98].
- ImageNet-100: ``images_train/labels_train/images_valid/labels_valid`` (the official valid set
  serves as test; our validation is carved from train).
Index datasets hold 0-based row numbers (the authors' code indexes numpy arrays with them).
"""

from pathlib import Path

import numpy as np

from cgankd.data.files import h5_has, make_part, read_h5_arrays, require_root, rows
from cgankd.data.registry import LoadContext, Part, RawData, register_dataset

TEST_ID_OFFSET = 10**7  # ids of a separate test table start here, so they never collide


def _with_subvalid(images: np.ndarray, labels: np.ndarray, train_rows: np.ndarray,
                   valid_rows: np.ndarray, where: str) -> tuple[Part, Part]:
    """Train = train rows minus the authors' subvalid rows; val = subvalid rows."""
    valid_rows = np.intersect1d(valid_rows, train_rows)
    train_rows = np.setdiff1d(train_rows, valid_rows)
    return (make_part(images[train_rows], labels[train_rows], train_rows, where),
            make_part(images[valid_rows], labels[valid_rows], valid_rows, where))


@register_dataset("rc49", "regression")
def load_rc49(ctx: LoadContext) -> RawData:
    path = require_root(ctx, "an RC-49 HDF5 file such as RC-49_64x64_25.h5")
    a = read_h5_arrays(path, ["images_odd", "labels_odd", "images_even", "labels_even",
                              "indx_odd_train", "indx_odd_subvalid", "indx_odd_rest"])
    n_odd = len(a["labels_odd"])
    train_rows = rows(a["indx_odd_train"], f"{path}:indx_odd_train", n_odd)
    valid_rows = rows(a["indx_odd_subvalid"], f"{path}:indx_odd_subvalid", n_odd)
    rest_rows = rows(a["indx_odd_rest"], f"{path}:indx_odd_rest", n_odd)
    train, val = _with_subvalid(a["images_odd"], a["labels_odd"], train_rows, valid_rows,
                                f"{path}:images_odd")
    n_even = len(a["labels_even"])
    test = make_part(np.concatenate([a["images_odd"][rest_rows], a["images_even"]]),
                     np.concatenate([a["labels_odd"][rest_rows], a["labels_even"]]),
                     np.concatenate([rest_rows, TEST_ID_OFFSET + np.arange(n_even)]),
                     f"{path}:images_even")
    return RawData(task="regression", train=train, val=val, test=test, label_range=(0.0, 90.0),
                   label_unit="degrees", source=str(path))


def _train_test_tables(path: Path, train_key: str, test_key: str) -> tuple[Part, Part]:
    """v3 layout: ``images_<train_key>``/``labels_<train_key>`` and the same for test."""
    keys = [f"images_{train_key}", f"labels_{train_key}", f"images_{test_key}",
            f"labels_{test_key}"]
    a = read_h5_arrays(path, keys)
    train = make_part(a[keys[0]], a[keys[1]], np.arange(len(a[keys[1]])), f"{path}:{keys[0]}")
    test = make_part(a[keys[2]], a[keys[3]], TEST_ID_OFFSET + np.arange(len(a[keys[3]])),
                     f"{path}:{keys[2]}")
    return train, test


def _range_of(train: Part) -> tuple[float, float]:
    return float(np.min(train.labels)), float(np.max(train.labels))


@register_dataset("utkface", "regression")
def load_utkface(ctx: LoadContext) -> RawData:
    path = require_root(ctx, "a UTKFace HDF5 file such as UTKFace_64x64_prop_0.8.h5")
    if h5_has(path, "images_train"):  # v3: a plain train/test split
        train, test = _train_test_tables(path, "train", "test")
        return RawData(task="regression", train=train, test=test, label_range=_range_of(train),
                       label_unit="years", source=str(path))
    a = read_h5_arrays(path, ["images", "labels", "indx_train", "indx_subvalid", "indx_test"])
    n = len(a["labels"])
    train_rows = rows(a["indx_train"], f"{path}:indx_train", n)
    valid_rows = rows(a["indx_subvalid"], f"{path}:indx_subvalid", n)
    test_rows = rows(a["indx_test"], f"{path}:indx_test", n)
    train, val = _with_subvalid(a["images"], a["labels"], train_rows, valid_rows, f"{path}:images")
    test = make_part(a["images"][test_rows], a["labels"][test_rows], test_rows, f"{path}:images")
    return RawData(task="regression", train=train, val=val, test=test,
                   label_range=_range_of(train), label_unit="years", source=str(path))


@register_dataset("steering_angle", "regression")
def load_steering_angle(ctx: LoadContext) -> RawData:
    path = require_root(ctx, "a Steering Angle HDF5 file such as SteeringAngle_64x64_prop_0.8.h5")
    train, test = _train_test_tables(path, "train", "test")
    return RawData(task="regression", train=train, test=test, label_range=_range_of(train),
                   label_unit="degrees", source=str(path))


IMAGENET100_DEFAULTS = {
    "num_classes": 100,  # the file stores bare class ids
}


@register_dataset("imagenet100", "classification", IMAGENET100_DEFAULTS)
def load_imagenet100(ctx: LoadContext) -> RawData:
    path = require_root(ctx, "an ImageNet-100 HDF5 file")
    train, test = _train_test_tables(path, "train", "valid")
    return RawData(task="classification", train=train, test=test,
                   class_names=[str(k) for k in range(ctx.options["num_classes"])],
                   source=str(path))
