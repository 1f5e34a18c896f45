"""Checks on loaded data: every failure is one line naming the source and the value."""

import numpy as np

from cgankd.errors import CgankdInputError


def as_nchw_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """Return images as uint8 (N, C, H, W); accepts NCHW, NHWC (C in {1, 3}) and NHW."""
    if images.dtype != np.uint8:
        raise CgankdInputError(f"{where}: images must be uint8 in [0, 255], got {images.dtype}")
    if images.ndim == 3:
        return images[:, None]
    if images.ndim != 4:
        raise CgankdInputError(f"{where}: images must be (N, C, H, W), got shape {images.shape}")
    if images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # NHWC, as torchvision and some HDF5 files store it
    if images.shape[1] not in (1, 3):
        raise CgankdInputError(f"{where}: images need 1 or 3 channels, got shape {images.shape}")
    return np.ascontiguousarray(images)


def check_class_labels(labels: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """Class ids as int64 in [0, num_classes); NaN, fractions or out-of-range ids are errors."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise CgankdInputError(f"{where}: labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CgankdInputError(f"{where}: label at row {i} is {labels[i].item()!r}, "
                                   f"not a class id")
    elif labels.dtype.kind not in "iu":
        raise CgankdInputError(f"{where}: labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CgankdInputError(f"{where}: label {labels[i]} at row {i} is outside "
                               f"[0, {num_classes}) for {num_classes} classes")
    return labels


def check_regression_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Finite float32 targets; NaN or infinity is an error naming the row."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "iuf":
        raise CgankdInputError(f"{where}: labels must be a 1-D numeric array, got "
                               f"{labels.dtype} {labels.shape}")
    labels = labels.astype(np.float32)
    bad = ~np.isfinite(labels)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CgankdInputError(f"{where}: label at row {i} is {labels[i].item()!r}")
    return labels


def check_lengths(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if len(images) != len(labels):
        raise CgankdInputError(f"{where}: {len(images)} images but {len(labels)} labels")


def check_every_class_present(labels: np.ndarray, class_names: list[str], where: str) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        k = int(empty[0])
        raise CgankdInputError(f"{where}: class {k} ({class_names[k]!r}) has zero training images")
