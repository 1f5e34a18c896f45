"""Contrastive representation distillation (Tian et al. 2020), with memory banks.

Each net's embedding goes through a linear head to a unit vector. A student vector is scored
against the teacher memory's entry for the same sample (positive) and K other samples'
entries (negatives), and the other way round; NCE tells positives from negatives. The banks
hold one vector per dataset sample, refreshed by momentum, so a batch sees K negatives without
running the nets on them.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.kd.base import CLASSIFICATION, KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import embedding

NCE_EPS = 1e-7  # the reference implementation's guard in the NCE ratios


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """NCE with a uniform noise distribution over the n_data samples.

    ``scores`` (B, 1 + K): column 0 the positive, the rest the negatives, each an unnormalised
    density exp(v.w / T) / Z. P(positive | score) = s / (s + K / n_data).
    """
    noise = (scores.shape[1] - 1) / n_data
    positive, negatives = scores[:, 0], scores[:, 1:]
    log_d1 = torch.log(positive / (positive + noise + NCE_EPS))
    log_d0 = torch.log(noise / (negatives + noise + NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


@KD_LOSSES.register("crd")
class ContrastiveRepresentation(KDLoss):
    """NCE(student vs teacher bank) + NCE(teacher vs student bank); needs dataset indices."""

    # Instance discrimination pushes apart every pair of distinct samples; with continuous
    # labels, many samples (and every relabelled fake) share a target, so CRD is kept to the
    # task its paper defines it for.
    tasks = frozenset({CLASSIFICATION})
    DEFAULTS = {
        "feat_dim": 128,  # the paper's embedding size for both heads
        # Negatives per positive; the paper uses 16384 on CIFAR, 4096 suits the smaller sets
        # here. Capped at n_data - 1 (there are no more distinct negatives).
        "nce_k": 4096,
        "nce_t": 0.07,  # softmax temperature on the unit-vector dot products (the paper's)
        "nce_m": 0.5,  # memory momentum: the bank keeps half of a sample's previous vector
    }

    def __init__(self, *, task: str, shapes: ProbeShapes, n_data: int, options: dict,
                 where: str):
        super().__init__(task=task, shapes=shapes, n_data=n_data, options=options, where=where)
        if n_data < 2:
            raise CgankdInputError(f"{where} needs at least 2 training samples, got {n_data}")
        feat_dim = int(options["feat_dim"])
        self.n_data = int(n_data)
        self.n_negatives = min(int(options["nce_k"]), self.n_data - 1)
        self.temperature = float(options["nce_t"])
        self.momentum = float(options["nce_m"])
        if self.n_negatives < 1 or feat_dim < 1 or self.temperature <= 0:
            raise CgankdInputError(f"{where}: nce_k, feat_dim and nce_t must be positive")
        if not 0 <= self.momentum < 1:
            raise CgankdInputError(f"{where}.nce_m must be in [0, 1), got {self.momentum}")
        self.head_student = nn.Linear(shapes.student_feats[-1][1:].numel(), feat_dim)
        self.head_teacher = nn.Linear(shapes.teacher_feats[-1][1:].numel(), feat_dim)
        # Uniform init with the variance of a random unit-ish vector, as the reference does.
        bound = 1.0 / (feat_dim / 3) ** 0.5
        self.register_buffer("memory_student", (torch.rand(n_data, feat_dim) * 2 - 1) * bound)
        self.register_buffer("memory_teacher", (torch.rand(n_data, feat_dim) * 2 - 1) * bound)
        # Z, the partition-function estimate, is fixed from the first batch; < 0 means "not yet".
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    def sample_contrast_index(self, index: torch.Tensor) -> torch.Tensor:
        """(B, 1 + K) bank rows: the sample itself, then K uniform draws among the others."""
        draws = torch.randint(0, self.n_data - 1, (index.shape[0], self.n_negatives),
                              device=index.device)
        negatives = draws + (draws >= index.unsqueeze(1)).long()  # skip the positive's row
        return torch.cat([index.unsqueeze(1), negatives], dim=1)

    def _scores(self, memory: torch.Tensor, rows: torch.Tensor, anchor: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        weights = memory[rows]  # (B, 1 + K, D), a copy: the bank update below does not touch it
        scores = torch.exp(torch.bmm(weights, anchor.unsqueeze(2)).squeeze(2) / self.temperature)
        if z.item() < 0:
            z.copy_(scores.detach().mean() * self.n_data)
        return scores / z

    @torch.no_grad()
    def _update(self, memory: torch.Tensor, index: torch.Tensor, vectors: torch.Tensor) -> None:
        mixed = memory[index] * self.momentum + vectors * (1 - self.momentum)
        memory.index_copy_(0, index, F.normalize(mixed, dim=1))

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        if index is None:
            raise CgankdInputError(f"{self.where} needs each sample's dataset index")
        index = index.long()
        if index.min().item() < 0 or index.max().item() >= self.n_data:
            raise CgankdInputError(f"{self.where}: dataset index outside [0, {self.n_data})")
        v_student = F.normalize(self.head_student(embedding(s_feats)), dim=1)
        v_teacher = F.normalize(self.head_teacher(embedding(t_feats)), dim=1)
        rows = self.sample_contrast_index(index)
        scores_student = self._scores(self.memory_teacher, rows, v_student, self.z_student)
        scores_teacher = self._scores(self.memory_student, rows, v_teacher, self.z_teacher)
        self._update(self.memory_student, index, v_student.detach())
        self._update(self.memory_teacher, index, v_teacher.detach())
        return nce_loss(scores_student, self.n_data) + nce_loss(scores_teacher, self.n_data)
