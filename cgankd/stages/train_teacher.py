"""The ``train_teacher`` stage: the KD teacher, which also judges the fakes in filter_relabel, on
the real splits."""

from typing import Any

from cgankd.stages._training import train_model


def run(**kwargs: Any) -> dict[str, Any]:
    """``train_model`` with role "teacher"; the other keyword arguments as it takes them."""
    return train_model(role="teacher", **kwargs)
