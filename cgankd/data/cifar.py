"""CIFAR-10 / CIFAR-100 through torchvision, from a local root.

torchvision verifies every batch file's MD5 before reading. We check that the files exist
instead: the MD5 list makes files written by tests (same pickle format, other content)
unreadable, and a corrupt pickle still fails with a clear error below. Downloading happens only
when ``data.download`` is true.
"""

import pickle
from pathlib import Path

import numpy as np

from cgankd.data.files import make_part, require_root
from cgankd.data.registry import LoadContext, RawData, register_dataset
from cgankd.errors import CgankdInputError


def _torchvision_class(name: str):
    from torchvision import datasets

    base = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]

    class LocalCIFAR(base):  # type: ignore[misc, valid-type]
        """torchvision's reader with existence checks in place of its fixed MD5 list."""

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / fname).is_file() for fname, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            path = Path(self.root) / self.base_folder / self.meta["filename"]
            if not path.is_file():
                raise RuntimeError(f"metadata file {path} not found")
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return LocalCIFAR


def _load_cifar(ctx: LoadContext) -> RawData:
    root = ctx.root
    if not ctx.download:
        folder = "cifar-10-batches-py" if ctx.name == "cifar10" else "cifar-100-python"
        root = require_root(ctx, f"the torchvision {ctx.name} folder, e.g. <root>/{folder}")
    elif root is None:
        raise CgankdInputError(f"data.root: {ctx.name} needs a root to download into")
    cls = _torchvision_class(ctx.name)
    parts = {}
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=ctx.download)
        except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
            raise CgankdInputError(f"data.root: {root}: {err} (set data.download: true to "
                                   f"fetch it)") from None
        except Exception as err:  # a truncated or foreign pickle
            raise CgankdInputError(f"data.root: {root}: cannot read {ctx.name} "
                                   f"({'train' if train else 'test'} batches): "
                                   f"{type(err).__name__}: {err}") from None
        labels = np.asarray(ds.targets, dtype=np.int64)
        offset = 0 if train else 10**6  # test ids never collide with train ids
        parts[train] = make_part(np.asarray(ds.data), labels,
                                 offset + np.arange(len(labels)), f"{root} ({ctx.name})")
        classes = list(ds.classes)
    return RawData(task="classification", train=parts[True], test=parts[False],
                   class_names=classes, source=f"{root} ({ctx.name})")


register_dataset("cifar10", "classification")(_load_cifar)
register_dataset("cifar100", "classification")(_load_cifar)
