"""Datasets: loaders in a registry, split carving, and the ``prepare_data`` stage."""

# Importing the loader modules fills the registry.
from cgankd.data import authors_h5, cifar, digits, tinyimagenet, user  # noqa: F401
from cgankd.data.prepare import prepare_data
from cgankd.data.registry import DATASETS, LoadContext, Part, RawData, register_dataset

__all__ = ["DATASETS", "LoadContext", "Part", "RawData", "prepare_data", "register_dataset"]
