"""Distillation terms (vanilla KD, FitNet, AT, SP, RKD, PKT, CRD, VID) and the student objective.

``build_kd_loss`` makes one registered term; ``DistillObjective`` combines the task loss with
vanilla KD and one method term under the RepDistiller weights.
"""

from cgankd.kd.base import KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.build import build_kd_loss, kd_loss_names
from cgankd.kd.objective import DistillObjective, default_weights

__all__ = ["KD_LOSSES", "KDLoss", "ProbeShapes", "build_kd_loss", "kd_loss_names",
           "DistillObjective", "default_weights"]
