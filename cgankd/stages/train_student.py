"""The ``train_student`` stage: a student net on the real training split, plus one rung's fakes
where the variant uses them, with or without a teacher's KD."""

from typing import Any

from cgankd.stages._training import train_model


def run(**kwargs: Any) -> dict[str, Any]:
    """``train_model`` with role "student"; the other keyword arguments as it takes them."""
    return train_model(role="student", **kwargs)
