"""The ``train_cas`` stage: a student net on one rung's fakes alone (classification accuracy score,
CAS)."""

from typing import Any

from cgankd.stages._training import train_model


def run(**kwargs: Any) -> dict[str, Any]:
    """``train_model`` with role "cas"; the other keyword arguments as it takes them."""
    return train_model(role="cas", **kwargs)
