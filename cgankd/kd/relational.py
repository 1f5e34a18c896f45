"""Relational KD (Park et al. 2019): match distances and angles among the batch's embeddings."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import embedding

# Floor under squared distances before the square root: keeps the gradient finite where two
# embeddings coincide (the diagonal, duplicated samples).
SQUARED_DISTANCE_FLOOR = 1e-12


def normalised_distances(e: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances (zero diagonal) divided by the mean off-diagonal one."""
    sq = e.pow(2).sum(1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=SQUARED_DISTANCE_FLOOR)
    off_diagonal = 1 - torch.eye(e.shape[0], device=e.device, dtype=e.dtype)
    d = d2.sqrt() * off_diagonal
    return d / d[d > 0].mean()


def angle_cosines(e: torch.Tensor) -> torch.Tensor:
    """cos of the angle at vertex i between j and k, for all (i, j, k): flattened N^3."""
    unit = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=2)  # [i, j] = unit(e_j - e_i)
    return torch.bmm(unit, unit.transpose(1, 2)).flatten()


@KD_LOSSES.register("rkd")
class RelationalKD(KDLoss):
    """distance_weight * smoothL1(distances) + angle_weight * smoothL1(angle cosines)."""

    DEFAULTS = {
        "distance_weight": 25.0,  # the paper's and RepDistiller's weights: the angle term's
        "angle_weight": 50.0,  # values are smaller, so it gets twice the distance term's weight
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        self.distance_weight = float(options["distance_weight"])
        self.angle_weight = float(options["angle_weight"])

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        s_emb, t_emb = embedding(s_feats), embedding(t_feats)
        distance = F.smooth_l1_loss(normalised_distances(s_emb), normalised_distances(t_emb))
        angle = F.smooth_l1_loss(angle_cosines(s_emb), angle_cosines(t_emb))
        return self.distance_weight * distance + self.angle_weight * angle
