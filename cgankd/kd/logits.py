"""Vanilla KD (Hinton et al. 2015; the paper's "BLKD"): the teacher's output as a soft target."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cgankd.errors import CgankdInputError
from cgankd.kd.base import CLASSIFICATION, KD_LOSSES, KDLoss, ProbeShapes


@KD_LOSSES.register("kd")
class VanillaKD(KDLoss):
    """Classification: KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean.
    Regression: MSE between the student's and the teacher's prediction.
    """

    DEFAULTS = {
        # Hinton's temperature as RepDistiller and cGAN-KD use it; the T^2 factor keeps the
        # soft-target gradients on the same scale as the hard-label ones whatever T is.
        "temperature": 4.0,
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        if shapes.student_out[1:] != shapes.teacher_out[1:]:
            raise CgankdInputError(f"{where}: student output {tuple(shapes.student_out[1:])} and "
                                   f"teacher output {tuple(shapes.teacher_out[1:])} differ")
        self.temperature = float(options["temperature"])
        if self.temperature <= 0:
            raise CgankdInputError(f"{where}.temperature must be > 0, got {self.temperature}")

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        if self.task != CLASSIFICATION:
            return F.mse_loss(s_out, t_out)
        t = self.temperature
        return F.kl_div(F.log_softmax(s_out / t, dim=1), F.log_softmax(t_out / t, dim=1),
                        reduction="batchmean", log_target=True) * t * t
