"""The ``prepare_data`` stage's plan-time checks (``data``): the dataset's registry name, its
``data.options`` keys, and what the rest of the config may assume about it (task, classes).
The loaders check the option values when they run."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.stage_options.names import DATASETS, check_known

# Classes of the datasets whose class count is fixed by the source (for plan-time count checks).
FIXED_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}


def check_data(data: Mapping[str, Any], where: str = "data") -> tuple[str | None, int | None]:
    """Check ``data``; return (task, number of classes), each None where the data decide it."""
    name = check_known(data.get("dataset"), DATASETS, "dataset", f"{where}.dataset")
    task, keys = DATASETS[name]
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise CgankdInputError(f"{where}.options: must be a mapping, got {options!r}")
    merge_options(dict.fromkeys(keys), options, f"{where}.options")
    if task == "any":  # h5: the file's task is an option (classification by default)
        task = options.get("task", "classification")
        if task not in ("classification", "regression"):
            raise CgankdInputError(f"{where}.options.task: {task!r} is not classification or "
                                   f"regression")
    if task == "regression":
        for key in ("val_per_class", "train_per_class"):
            if data.get(key) is not None:
                raise CgankdInputError(f"{where}.{key}: a per-class option, but dataset "
                                       f"{name!r} is a regression set")
    classes = FIXED_CLASSES.get(name)
    if task == "classification" and isinstance(options.get("num_classes"), int):
        classes = options["num_classes"]
    return task, (classes if task == "classification" else None)
