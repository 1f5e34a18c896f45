"""Small helpers shared by the loaders that read files from ``data.root``."""

from pathlib import Path

import numpy as np

from cgankd.data.checks import as_nchw_uint8, check_lengths
from cgankd.data.registry import LoadContext, Part
from cgankd.errors import CgankdInputError
from cgankd.h5io import open_h5, read_array


def require_root(ctx: LoadContext, what: str) -> Path:
    """``data.root`` as an existing path, or one clear error saying what was expected there."""
    if ctx.root is None:
        raise CgankdInputError(f"data.root: dataset {ctx.name!r} needs a root ({what})")
    if not ctx.root.exists():
        raise CgankdInputError(f"data.root: {ctx.root} not found (expected {what})")
    return ctx.root


def read_h5_arrays(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Read ``keys`` from an HDF5 file, each failure naming the file and the key."""
    with open_h5(path) as f:
        return {key: read_array(f, key) for key in keys}


def h5_has(path: Path, key: str) -> bool:
    with open_h5(path) as f:
        return key in f


def make_part(images: np.ndarray, labels: np.ndarray, ids: np.ndarray, where: str) -> Part:
    images = as_nchw_uint8(images, where)
    check_lengths(images, labels, where)
    return Part(images, np.asarray(labels), np.asarray(ids, dtype=np.int64))


def rows(array: np.ndarray, where: str, n: int) -> np.ndarray:
    """An index dataset as int64 row numbers, each checked against the table size ``n``."""
    idx = np.asarray(array).astype(np.int64).ravel()
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise CgankdInputError(f"{where}: row index {idx[bad][0]} outside [0, {n})")
    return idx
