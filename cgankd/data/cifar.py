"""CIFAR-10 / CIFAR-100 from the python-version batch files under a local root.

The batches are Python pickles (the archive's format), and a plain ``pickle.load`` runs
whatever a file asks for. They are read here with an unpickler that allows only what the
format holds (dicts, lists, strings, ints and uint8 numpy arrays): a file asking for anything
else is refused with one line naming it. We check that the files exist rather than
torchvision's fixed MD5 list, which would make files written by tests (same format, other
content) unreadable; torchvision only downloads, when ``data.download`` is true, and checks the
archive's MD5 then.
"""

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.data.files import make_part, require_root
from cgankd.data.registry import LoadContext, RawData, register_dataset
from cgankd.errors import CgankdInputError

# name -> (folder, train batches, test batches, meta file, its class-names key, labels key)
LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "batches.meta", "label_names", "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_label_names",
                 "fine_labels"),
}
SIDE = 32  # every CIFAR image is 3 x 32 x 32, stored as one row of R, G, B planes

# What a batch pickle may name: numpy's array reconstruction (module renamed in numpy 2) and
# codecs.encode, which Python 3 pickles (protocol 2) use for an array's raw bytes.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused: it asks for {module}.{name}, which a CIFAR batch never holds (only "
                f"dicts, lists, strings, ints and numpy arrays are read)")
        return super().find_class(module, name)


def read_batch(path: Path, what: str = "CIFAR") -> dict:
    """One batch or meta file (``what``, for errors) as a dict, through the restricted
    unpickler; errors name the file."""
    try:
        with open(path, "rb") as f:
            content = _BatchUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as err:
        raise CgankdInputError(f"data.root: {path}: cannot read this {what} pickle: "
                               f"{type(err).__name__}: {err}") from None
    if not isinstance(content, dict):
        raise CgankdInputError(f"data.root: {path}: a {what} pickle holds a dict, found "
                               f"{type(content).__name__}")
    return content


def _field(batch: dict, key: str, path: Path) -> Any:
    if key not in batch:
        raise CgankdInputError(f"data.root: {path}: no {key!r} in this CIFAR pickle (keys: "
                               f"{', '.join(map(str, batch))})")
    return batch[key]


def _read_part(folder: Path, files: list[str], label_key: str,
               what: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in files:
        path = folder / name
        batch = read_batch(path, what)
        data = _field(batch, "data", path)
        if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                or data.shape[1] != 3 * SIDE * SIDE):
            raise CgankdInputError(f"data.root: {path}: 'data' must be uint8 (N, {3 * SIDE * SIDE})"
                                   f", found {getattr(data, 'dtype', type(data).__name__)} "
                                   f"{getattr(data, 'shape', '')}")
        images.append(data.reshape(len(data), 3, SIDE, SIDE))
        labels.append(np.asarray(_field(batch, label_key, path), dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _download(root: Path, name: str) -> None:
    """Fetch and unpack the archive through torchvision (which checks its MD5)."""
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    try:
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except Exception as err:  # no network, a checksum mismatch, a full disk
        raise CgankdInputError(f"data.root: {root}: downloading {name} failed: "
                               f"{type(err).__name__}: {err}") from None


def _load_cifar(ctx: LoadContext) -> RawData:
    folder_name, train_files, test_files, meta, names_key, label_key = LAYOUT[ctx.name]
    if ctx.download:
        if ctx.root is None:
            raise CgankdInputError(f"data.root: {ctx.name} needs a root to download into")
        root = ctx.root
        if not all((root / folder_name / f).is_file() for f in [*train_files, *test_files, meta]):
            _download(root, ctx.name)
    else:
        root = require_root(ctx, f"the python-version {ctx.name} folder, e.g. "
                                 f"<root>/{folder_name}")
    folder = root / folder_name
    for name in [*train_files, *test_files, meta]:
        if not (folder / name).is_file():
            raise CgankdInputError(f"data.root: {root}: {folder / name} not found (set "
                                   f"data.download: true to fetch {ctx.name})")
    meta_batch = read_batch(folder / meta, f"{ctx.name} meta")
    classes = [str(c) for c in _field(meta_batch, names_key, folder / meta)]
    parts = {}
    for train, files in ((True, train_files), (False, test_files)):
        what = f"{ctx.name} {'train' if train else 'test'} batch"
        images, labels = _read_part(folder, files, label_key, what)
        offset = 0 if train else 10**6  # test ids never collide with train ids
        parts[train] = make_part(images, labels, offset + np.arange(len(labels)),
                                 f"{root} ({ctx.name}, {'train' if train else 'test'} batches)")
    return RawData(task="classification", train=parts[True], test=parts[False],
                   class_names=classes, source=f"{root} ({ctx.name})")


register_dataset("cifar10", "classification")(_load_cifar)
register_dataset("cifar100", "classification")(_load_cifar)
