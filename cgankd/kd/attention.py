"""Attention transfer (Zagoruyko & Komodakis 2017): match where each stage looks."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cgankd.errors import CgankdInputError
from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import matched_stage_pairs, pool_to_common_size, stages


def attention_map(feature: torch.Tensor, p: float) -> torch.Tensor:
    """Channel mean of |f|^p, flattened and L2-normalised per sample: (N, H*W)."""
    return F.normalize(feature.abs().pow(p).mean(1).flatten(1), dim=1)


@KD_LOSSES.register("at")
class AttentionTransfer(KDLoss):
    """Sum over matched stages of the mean squared distance between attention maps."""

    DEFAULTS = {
        "p": 2.0,  # the paper's (and RepDistiller's) exponent: energy of the activations
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        self.p = float(options["p"])
        if self.p <= 0:
            raise CgankdInputError(f"{where}.p must be > 0, got {self.p}")
        self.pairs = matched_stage_pairs(len(stages(shapes.student_feats)),
                                         len(stages(shapes.teacher_feats)))

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        s_stages, t_stages = stages(s_feats), stages(t_feats)
        total = s_out.new_zeros(())
        for i, j in self.pairs:
            s_map, t_map = pool_to_common_size(s_stages[i], t_stages[j])
            total = total + (attention_map(s_map, self.p)
                             - attention_map(t_map, self.p)).pow(2).mean()
        return total
