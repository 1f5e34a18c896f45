"""Contrastive representation distillation (Tian et al. 2020), with memory banks.

Each net's embedding goes through a linear head to a unit vector. A student vector is scored
against the teacher memory's entry for the same sample (positive) and K other samples'
entries (negatives), and the other way round; NCE tells positives from negatives. The banks
hold one vector per dataset sample, refreshed by momentum, so a batch sees K negatives without
running the nets on them. Negatives come from the anchor's other classes only (``negatives:
exact``, the reference's mode, which needs the training labels) or from any other sample
(``uniform``).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.kd.base import CLASSIFICATION, KD_LOSSES, KDLoss, ProbeShapes
from cgankd.kd.features import embedding
from cgankd.options import require_choice
from cgankd.stage_options.kd import CRD_NEGATIVES

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
        "negatives": CRD_NEGATIVES[0],  # exact: other classes only (the reference's default)
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
        self.negatives = require_choice(options["negatives"], CRD_NEGATIVES, f"{where}.negatives")
        # exact mode: each row's class, the rows sorted by class, and each class's first
        # position and size there; derived from the data, so not saved with the term
        # (set_data_labels sets them).
        self.register_buffer("row_class", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("rows_by_class", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("class_start", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("class_size", torch.empty(0, dtype=torch.long), persistent=False)
        self.head_student = nn.Linear(shapes.student_feats[-1][1:].numel(), feat_dim)
        self.head_teacher = nn.Linear(shapes.teacher_feats[-1][1:].numel(), feat_dim)
        # Uniform init with the variance of a random unit-ish vector, as the reference does.
        bound = 1.0 / (feat_dim / 3) ** 0.5
        self.register_buffer("memory_student", (torch.rand(n_data, feat_dim) * 2 - 1) * bound)
        self.register_buffer("memory_teacher", (torch.rand(n_data, feat_dim) * 2 - 1) * bound)
        # Z, the partition-function estimate, is fixed from the first batch; < 0 means "not yet".
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    @property
    def needs_data_labels(self) -> bool:
        return self.negatives == "exact"

    def set_data_labels(self, labels: torch.Tensor) -> None:
        """The class of each bank row (bank row i = training-set row i), for exact negatives."""
        labels = torch.as_tensor(labels).long().reshape(-1).to(self.rows_by_class.device)
        if len(labels) != self.n_data:
            raise CgankdInputError(f"{self.where}: {len(labels)} labels for {self.n_data} "
                                   "bank rows")
        counts = torch.bincount(labels)
        if int(counts.max()) == self.n_data:
            raise CgankdInputError(f"{self.where}.negatives: exact needs at least two classes "
                                   "in the training set; use uniform")
        self.row_class = labels
        self.rows_by_class = torch.argsort(labels, stable=True)
        self.class_size = counts
        self.class_start = torch.cumsum(counts, 0) - counts

    def sample_contrast_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, 1 + K) bank rows: the sample itself, then K draws (with replacement, as the
        reference) among the other classes' rows (exact) or all other rows (uniform)."""
        if self.negatives == "exact":
            return torch.cat([rows.unsqueeze(1), self._exact_negatives(rows)], dim=1)
        draws = torch.randint(0, self.n_data - 1, (rows.shape[0], self.n_negatives),
                              device=rows.device)
        negatives = draws + (draws >= rows.unsqueeze(1)).long()  # skip the positive's row
        return torch.cat([rows.unsqueeze(1), negatives], dim=1)

    def _exact_negatives(self, rows: torch.Tensor) -> torch.Tensor:
        """K rows per anchor drawn uniformly from the rows of every class but the anchor's."""
        if len(self.rows_by_class) == 0:
            raise CgankdInputError(f"{self.where}.negatives: exact needs the training labels "
                                   "(set_data_labels)")
        anchor_class = self.row_class[rows]
        start, size = self.class_start[anchor_class], self.class_size[anchor_class]
        others = (self.n_data - size).unsqueeze(1)  # > 0: set_data_labels rejects one class
        u = torch.rand(rows.shape[0], self.n_negatives, device=rows.device)
        draws = torch.minimum((u * others).long(), others - 1)
        # positions [0, start) then [start + size, n_data) of the class-sorted rows
        draws = draws + (draws >= start.unsqueeze(1)).long() * size.unsqueeze(1)
        return self.rows_by_class[draws]

    def _scores(self, memory: torch.Tensor, rows: torch.Tensor, anchor: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        weights = memory[rows]  # (B, 1 + K, D), a copy: the bank update below does not touch it
        scores = torch.exp(torch.bmm(weights, anchor.unsqueeze(2)).squeeze(2) / self.temperature)
        if z.item() < 0:
            z.copy_(scores.detach().mean() * self.n_data)
        return scores / z

    @torch.no_grad()
    def _update(self, memory: torch.Tensor, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        mixed = memory[rows] * self.momentum + vectors * (1 - self.momentum)
        memory.index_copy_(0, rows, F.normalize(mixed, dim=1))

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor,
                s_feats: Sequence[torch.Tensor], t_feats: Sequence[torch.Tensor],
                labels: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        if rows is None:
            raise CgankdInputError(f"{self.where} needs each sample's training-set row")
        rows = rows.long()
        if rows.min().item() < 0 or rows.max().item() >= self.n_data:
            raise CgankdInputError(f"{self.where}: training-set row outside [0, {self.n_data})")
        v_student = F.normalize(self.head_student(embedding(s_feats)), dim=1)
        v_teacher = F.normalize(self.head_teacher(embedding(t_feats)), dim=1)
        contrast = self.sample_contrast_rows(rows)
        scores_student = self._scores(self.memory_teacher, contrast, v_student, self.z_student)
        scores_teacher = self._scores(self.memory_student, contrast, v_teacher, self.z_teacher)
        self._update(self.memory_student, rows, v_student.detach())
        self._update(self.memory_teacher, rows, v_teacher.detach())
        return nce_loss(scores_student, self.n_data) + nce_loss(scores_teacher, self.n_data)
