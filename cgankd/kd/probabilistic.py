"""Probabilistic knowledge transfer (Passalis & Tefas 2018): match the conditional
probability of each sample choosing each other one as a neighbour, by cosine similarity.
"""

from collections.abc import Sequence

import torch

from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import embedding


def neighbour_probabilities(e: torch.Tensor, eps: float) -> torch.Tensor:
    """Cosine similarities mapped to [0, 1], each row normalised to sum to 1: (N, N)."""
    unit = e / (e.norm(dim=1, keepdim=True) + eps)
    similarity = (unit @ unit.t() + 1) / 2
    return similarity / similarity.sum(1, keepdim=True)


@KD_LOSSES.register("pkt")
class ProbabilisticTransfer(KDLoss):
    """mean over all (i, j) of p_t log((p_t + eps) / (p_s + eps)): a KL divergence per row."""

    DEFAULTS = {
        "eps": 1e-7,  # the reference implementation's guard against log(0) and zero norms
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        self.eps = float(options["eps"])

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        p_s = neighbour_probabilities(embedding(s_feats), self.eps)
        p_t = neighbour_probabilities(embedding(t_feats), self.eps)
        return (p_t * torch.log((p_t + self.eps) / (p_s + self.eps))).mean()
