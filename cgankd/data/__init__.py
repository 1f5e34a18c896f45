"""Datasets: loaders in a registry and split carving (the ``prepare_data`` stage, which writes
the split files, is ``cgankd.stages.prepare_data``)."""

# Importing the loader modules fills the registry.
from cgankd.data import authors_h5, cifar, digits, tinyimagenet, user  # noqa: F401
from cgankd.data.registry import DATASETS, LoadContext, Part, RawData, register_dataset

__all__ = ["DATASETS", "LoadContext", "Part", "RawData", "register_dataset"]
