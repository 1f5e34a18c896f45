"""FitNets (Romero et al. 2015): regress one teacher stage from one student stage."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import pool_to_common_size, stages


def pick_stage(n_stages: int, requested: int | None, key: str) -> int:
    """Index into the stages: ``requested`` or, when None, the middle one.

    (n - 1) // 2 is RepDistiller's hint layer 2 (of stem + stages) for 3- and 4-stage nets.
    """
    if requested is None:
        return (n_stages - 1) // 2
    if not -n_stages <= requested < n_stages:
        raise CgankdInputError(f"{key} = {requested} is out of range for a net with "
                               f"{n_stages} stages")
    return requested % n_stages


@KD_LOSSES.register("fitnet")
class FitNet(KDLoss):
    """MSE between a trainable 1x1-conv(+BN) map of a student stage and a teacher stage;
    the larger of the two maps is average-pooled to the smaller's spatial size.
    """

    DEFAULTS = {
        "student_stage": None,  # stage number (0 = first stage after the stem); None: the middle
        "teacher_stage": None,  # the same for the teacher; nets of different depth need both
        # RepDistiller's regressor normalises its output; without BN the regressor has to learn
        # the teacher's feature scale from scratch.
        "batchnorm": True,
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        s_stages, t_stages = stages(shapes.student_feats), stages(shapes.teacher_feats)
        self.student_stage = pick_stage(len(s_stages), options["student_stage"],
                                        f"{where}.student_stage")
        self.teacher_stage = pick_stage(len(t_stages), options["teacher_stage"],
                                        f"{where}.teacher_stage")
        s_channels = s_stages[self.student_stage][1]
        t_channels = t_stages[self.teacher_stage][1]
        use_bn = bool(options["batchnorm"])
        layers: list[nn.Module] = [nn.Conv2d(s_channels, t_channels, 1, bias=not use_bn)]
        if use_bn:
            layers.append(nn.BatchNorm2d(t_channels))
        self.regressor = nn.Sequential(*layers)

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        student, target = pool_to_common_size(stages(s_feats)[self.student_stage],
                                              stages(t_feats)[self.teacher_stage])
        return F.mse_loss(self.regressor(student), target)
