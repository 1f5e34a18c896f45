"""Tiny-ImageNet (200 classes, 64x64), from the standard folder or the authors' HDF5 file.

Folder layout (as distributed): ``tiny-imagenet-200/wnids.txt``, ``words.txt``,
``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with ``val/val_annotations.txt``
(tab-separated: file, wnid, box). The official val set serves as test (the test set has no
labels); our validation split is carved from train. HDF5: ``imgs``, ``labels``, ``imgs_val``,
``labels_val``.
"""

from pathlib import Path

import numpy as np

from cgankd.data.files import make_part, read_h5_arrays, require_root
from cgankd.data.imagefiles import read_image_files
from cgankd.data.registry import LoadContext, RawData, register_dataset
from cgankd.errors import CgankdInputError


def _folder(root: Path) -> Path:
    return root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root


def _class_names(folder: Path, wnids: list[str]) -> list[str]:
    words = folder / "words.txt"
    if not words.is_file():
        return wnids
    names = dict(line.rstrip("\n").split("\t", 1) for line in words.open() if "\t" in line)
    return [names.get(w, w) for w in wnids]


def _load_folder(root: Path) -> RawData:
    folder = _folder(root)
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise CgankdInputError(f"data.root: {wnids_file} not found (expected the "
                               f"tiny-imagenet-200 folder layout)")
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    class_of = {w: k for k, w in enumerate(wnids)}

    train_files, train_labels = [], []
    for w in wnids:
        files = sorted((folder / "train" / w / "images").glob("*.JPEG"))
        train_files += files
        train_labels += [class_of[w]] * len(files)

    annotations = folder / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise CgankdInputError(f"data.root: {annotations} not found")
    val_files, val_labels = [], []
    for n, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in class_of:
            raise CgankdInputError(f"{annotations}: line {n} names no known wnid: {line!r}")
        val_files.append(folder / "val" / "images" / fields[0])
        val_labels.append(class_of[fields[1]])

    train = make_part(read_image_files(train_files, "RGB"), np.asarray(train_labels),
                      np.arange(len(train_files)), str(folder / "train"))
    test = make_part(read_image_files(val_files, "RGB"), np.asarray(val_labels),
                     10**6 + np.arange(len(val_files)), str(folder / "val"))
    return RawData(task="classification", train=train, test=test,
                   class_names=_class_names(folder, wnids), source=str(folder))


def _load_h5(path: Path, num_classes: int) -> RawData:
    a = read_h5_arrays(path, ["imgs", "labels", "imgs_val", "labels_val"])
    train = make_part(a["imgs"], a["labels"], np.arange(len(a["labels"])), f"{path}:imgs")
    test = make_part(a["imgs_val"], a["labels_val"], 10**6 + np.arange(len(a["labels_val"])),
                     f"{path}:imgs_val")
    return RawData(task="classification", train=train, test=test,
                   class_names=[str(i) for i in range(num_classes)], source=str(path))


TINYIMAGENET_DEFAULTS = {
    "num_classes": 200,  # the HDF5 file stores bare ids; the folder's wnids.txt overrides this
}


@register_dataset("tinyimagenet", "classification", TINYIMAGENET_DEFAULTS)
def load_tinyimagenet(ctx: LoadContext) -> RawData:
    root = require_root(ctx, "the tiny-imagenet-200 folder or tiny-imagenet-200.h5")
    if root.is_file():
        return _load_h5(root, ctx.options["num_classes"])
    return _load_folder(root)
