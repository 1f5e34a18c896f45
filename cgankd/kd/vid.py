"""Variational information distillation (Ahn et al. 2019): maximise a Gaussian lower bound on
the mutual information between matched student and teacher stages.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import matched_stage_pairs, pool_to_common_size, stages


class GaussianStagePredictor(nn.Module):
    """Predicts a teacher stage's mean from a student stage (three 1x1 convs) with a learned
    per-channel variance, softplus-parametrised so it stays positive."""

    def __init__(self, in_channels: int, out_channels: int, init_variance: float, eps: float):
        super().__init__()
        self.mean = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1))
        self.eps = eps
        # Inverse softplus of the initial variance, so training starts at init_variance.
        raw = math.log(math.expm1(init_variance - eps))
        self.raw_variance = nn.Parameter(torch.full((out_channels,), raw))

    def negative_log_likelihood(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        student, target = pool_to_common_size(student, teacher)
        mean = self.mean(student)
        variance = (F.softplus(self.raw_variance) + self.eps).view(1, -1, 1, 1)
        return (0.5 * ((mean - target).pow(2) / variance + variance.log())).mean()


@KD_LOSSES.register("vid")
class VariationalInformation(KDLoss):
    """Sum over matched stages of the Gaussian negative log-likelihood (constant dropped)."""

    DEFAULTS = {
        # A large initial variance keeps early gradients small while the means are still poor
        # (the reference implementation's value).
        "init_variance": 5.0,
        "eps": 1e-5,  # variance floor
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        s_stages, t_stages = stages(shapes.student_feats), stages(shapes.teacher_feats)
        self.pairs = matched_stage_pairs(len(s_stages), len(t_stages))
        self.predictors = nn.ModuleList(
            GaussianStagePredictor(s_stages[i][1], t_stages[j][1],
                                   float(options["init_variance"]), float(options["eps"]))
            for i, j in self.pairs)

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        s_stages, t_stages = stages(s_feats), stages(t_feats)
        total = s_out.new_zeros(())
        for predictor, (i, j) in zip(self.predictors, self.pairs):
            total = total + predictor.negative_log_likelihood(s_stages[i], t_stages[j])
        return total
