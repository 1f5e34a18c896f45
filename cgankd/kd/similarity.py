"""Similarity-preserving KD (Tung & Mori 2019): match the batch's pairwise-similarity pattern."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cgankd.kd.base import KD_LOSSES, KDLoss
from cgankd.kd.features import last_conv_map


def batch_similarity(feature: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the flattened maps, each row L2-normalised: (N, N)."""
    flat = feature.flatten(1)
    return F.normalize(flat @ flat.t(), dim=1)


@KD_LOSSES.register("sp")
class SimilarityPreserving(KDLoss):
    """Squared Frobenius distance of the two nets' similarity matrices, divided by N^2.

    Gram matrices are N x N, so the nets' channel counts and map sizes need not agree.
    """

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        diff = batch_similarity(last_conv_map(s_feats)) - batch_similarity(last_conv_map(t_feats))
        n = diff.shape[0]
        return diff.pow(2).sum() / (n * n)
