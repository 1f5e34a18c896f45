"""The dataset registry and the in-memory form every loader returns."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.registry import Registry

DATASETS = Registry("dataset")


@dataclass
class Part:
    """Images, labels and stable source ids of one part of a dataset (train, val or test)."""

    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 class ids or float raw regression targets
    ids: np.ndarray  # int64, unique within the dataset, stable across runs

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> "Part":
        return Part(self.images[rows], self.labels[rows], self.ids[rows])


@dataclass
class RawData:
    """What a loader returns: a training pool, and val/test parts where the source defines them."""

    task: str  # "classification" or "regression"
    train: Part
    val: Part | None = None
    test: Part | None = None
    class_names: list[str] | None = None  # classification
    label_range: tuple[float, float] | None = None  # regression: raw range mapped to [0, 1]
    label_unit: str = ""  # regression: "degrees", "years", ...
    source: str = ""  # the files read, for error messages and provenance


@dataclass
class LoadContext:
    """What a loader gets: the root from config, its merged options, and the policies."""

    name: str
    root: Path | None
    options: dict[str, Any]
    download: bool
    seed: int


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str
    load: Callable[[LoadContext], RawData]
    defaults: Mapping[str, Any] = field(default_factory=dict)  # dataset-specific options


def register_dataset(name: str, task: str, defaults: Mapping[str, Any] | None = None):
    """Register ``load(ctx) -> RawData`` under ``name`` with its option defaults."""

    def add(load: Callable[[LoadContext], RawData]) -> Callable[[LoadContext], RawData]:
        DATASETS.register(name)(DatasetSpec(name, task, load, dict(defaults or {})))
        return load

    return add
