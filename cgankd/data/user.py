"""A user's own data: an HDF5 file with ``images``/``labels``, or a folder of images per class.

HDF5: ``images`` uint8 (N, C, H, W) or (N, H, W, C), ``labels``; optional ``images_test`` /
``labels_test`` (otherwise a test part is carved with ``data.test_fraction``).
Image folder: ``<root>/<class>/*`` or ``<root>/train/<class>/*`` plus ``<root>/test/<class>/*``;
classes are the sorted sub-folder names of the training folder.
"""

from pathlib import Path

import numpy as np

from cgankd.data.files import h5_has, make_part, read_h5_arrays, require_root
from cgankd.data.imagefiles import read_image_files
from cgankd.data.registry import LoadContext, Part, RawData, register_dataset
from cgankd.errors import CgankdInputError

TEST_ID_OFFSET = 10**7

H5_DEFAULTS = {
    "task": "classification",  # or "regression" (labels are raw targets)
    "num_classes": None,  # classification: null = 1 + the largest label
    "label_unit": "",  # regression: unit of the targets, shown in reports
    "label_range": None,  # regression: [low, high] mapped to [0, 1]; null = training min/max
}


@register_dataset("h5", "any", H5_DEFAULTS)
def load_user_h5(ctx: LoadContext) -> RawData:
    path = require_root(ctx, "an HDF5 file with 'images' and 'labels'")
    opt = ctx.options
    if opt["task"] not in ("classification", "regression"):
        raise CgankdInputError(f"data.options.task: {opt['task']!r} is not classification or "
                               f"regression")
    a = read_h5_arrays(path, ["images", "labels"])
    train = make_part(a["images"], a["labels"], np.arange(len(a["labels"])), f"{path}:images")
    test = None
    if h5_has(path, "images_test"):
        t = read_h5_arrays(path, ["images_test", "labels_test"])
        test = make_part(t["images_test"], t["labels_test"],
                         TEST_ID_OFFSET + np.arange(len(t["labels_test"])), f"{path}:images_test")
    if opt["task"] == "regression":
        labels = np.asarray(train.labels, dtype=np.float64)
        low, high = opt["label_range"] or (np.nanmin(labels), np.nanmax(labels))
        return RawData(task="regression", train=train, test=test,
                       label_range=(float(low), float(high)), label_unit=opt["label_unit"],
                       source=str(path))
    k = opt["num_classes"]
    if k is None:
        k = int(np.nanmax(train.labels)) + 1
    return RawData(task="classification", train=train, test=test,
                   class_names=[str(i) for i in range(k)], source=str(path))


IMAGEFOLDER_DEFAULTS = {
    "mode": "RGB",  # PIL mode every image is converted to: "RGB" or "L" (grayscale)
    "extensions": [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"],
}


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _read_folder(folder: Path, classes: list[str], opt: dict, id_offset: int) -> Part:
    exts = {e.lower() for e in opt["extensions"]}
    files, labels = [], []
    for k, name in enumerate(classes):
        found = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in exts)
        files += found
        labels += [k] * len(found)
    images = read_image_files(files, opt["mode"])
    return make_part(images, np.asarray(labels, np.int64), id_offset + np.arange(len(files)),
                     str(folder))


@register_dataset("imagefolder", "classification", IMAGEFOLDER_DEFAULTS)
def load_imagefolder(ctx: LoadContext) -> RawData:
    expected = ("a folder with one sub-folder of images per class, <root>/<class>/*.png or "
                "<root>/train/<class>/* and <root>/test/<class>/*")
    root = require_root(ctx, expected)
    if not root.is_dir():
        hint = "; an HDF5 file is read with dataset: h5" if root.suffix in (".h5", ".hdf5") else ""
        raise CgankdInputError(f"data.root: {root} is a file, dataset 'imagefolder' expects "
                               f"{expected}{hint}")
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in _class_folders(train_dir)]
    if not classes:
        raise CgankdInputError(f"data.root: {train_dir} has no class sub-folders")
    train = _read_folder(train_dir, classes, ctx.options, 0)
    test = None
    if train_dir != root and (root / "test").is_dir():
        extra = sorted({p.name for p in _class_folders(root / "test")} - set(classes))
        if extra:
            raise CgankdInputError(f"{root / 'test'}: class folder {extra[0]!r} is not in "
                                   f"{train_dir}")
        test = _read_folder(root / "test", classes, ctx.options, TEST_ID_OFFSET)
    return RawData(task="classification", train=train, test=test, class_names=classes,
                   source=str(root))
