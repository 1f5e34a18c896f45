"""Views on the net contract's feature list, shared by the feature-based terms.

``net(x, return_features=True)`` gives ``feats = [stem, stage_1, ..., stage_k, embedding]``:
4-D maps, then the pooled (N, D) embedding last.
"""

from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F

T = TypeVar("T")


def stages(feats: Sequence[T]) -> Sequence[T]:
    """The stage outputs: what AT, VID and FitNet match (RepDistiller's ``feat[1:-1]``)."""
    return feats[1:-1]


def last_conv_map(feats: Sequence[T]) -> T:
    return feats[-2]


def embedding(feats: Sequence[torch.Tensor]) -> torch.Tensor:
    return feats[-1].flatten(1)


def matched_stage_pairs(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """Pair the stages of two nets of different depth from the deepest one back.

    Deepest-first alignment keeps the semantic levels that matter most for the output paired
    (a 4-stage teacher's last three stages against a 3-stage student's three).
    """
    n = min(n_student, n_teacher)
    return [(n_student - n + i, n_teacher - n + i) for i in range(n)]


def pool_to_common_size(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool whichever map is larger down to the smaller spatial size (per axis).

    Pooling down, never upsampling, so no invented detail enters a target.
    """
    size = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
    if tuple(a.shape[-2:]) != size:
        a = F.adaptive_avg_pool2d(a, size)
    if tuple(b.shape[-2:]) != size:
        b = F.adaptive_avg_pool2d(b, size)
    return a, b
