"""The ``train_metric_net`` stage: the metric net whose features fake_quality measures in (not the
teacher, so the teacher's filter is not judged in its own feature space)."""

from typing import Any

from cgankd.stages._training import train_model


def run(**kwargs: Any) -> dict[str, Any]:
    """``train_model`` with role "metric"; the other keyword arguments as it takes them."""
    return train_model(role="metric", **kwargs)
