"""CcGAN's vicinal sampling: conditioning on a continuous label through its neighbourhood.

A regression set has few images per label value (often one), so a conditional D cannot
compare real and fake images *at* a label. CcGAN instead draws a target label y*, takes real
images whose labels lie in a vicinity of y* (hard: |y - y*| <= kappa; soft: weight
exp(-nu (y - y*)^2), cut where it falls below 1e-3) and fakes generated at labels in the same
vicinity, and shows both to D conditioned on y*. All labels here are normalised to [0, 1].
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from cgankd.errors import CgankdInputError

SOFT_CUTOFF = 1e-3  # soft vicinity: real samples whose weight would fall below this are skipped
VICINITY_KINDS = ("hard", "soft")


def rule_of_thumb(labels_norm: np.ndarray, m_kappa: float) -> tuple[float, float]:
    """(sigma, kappa_base) from normalised training labels, one entry per image.

    sigma = 1.06 std(y) N^(-1/5) (Silverman's bandwidth; population std over all N images);
    kappa_base = m_kappa * the largest gap between consecutive distinct labels.
    Hard vicinity uses kappa = kappa_base; soft uses nu = 1 / kappa_base^2.
    """
    y = np.asarray(labels_norm, dtype=np.float64).ravel()
    distinct = np.unique(y)
    if len(distinct) < 2:
        raise CgankdInputError(f"CcGAN needs at least two distinct training labels, got "
                               f"{distinct.tolist()}")
    sigma = 1.06 * float(np.std(y)) * len(y) ** (-1 / 5)
    kappa_base = float(m_kappa) * float(np.max(np.diff(distinct)))
    return sigma, kappa_base


def nu_from_kappa(kappa_base: float) -> float:
    return 1.0 / kappa_base ** 2


@dataclass
class VicinalBatch:
    """One D step's draw. Tensors of length B; weights are ones for the hard vicinity."""

    real_rows: torch.Tensor  # int64 rows of the training set
    target: torch.Tensor  # y*, the label D is conditioned on (float32)
    fake_label: torch.Tensor  # the label each fake is generated at (float32)
    real_weight: torch.Tensor  # w_r (float32)
    fake_weight: torch.Tensor  # w_f (float32)


class VicinalSampler:
    """Draws CcGAN D-step batches from normalised training labels.

    ``width`` is kappa for the hard vicinity and nu for the soft one. ``clip_label`` clips the
    noisy labels y + eps (D's targets, G's labels) to [0, 1]; the fakes' labels drawn in a
    target's window are kept in [0, 1] either way, as in the authors' code.
    """

    def __init__(self, labels_norm: np.ndarray, sigma: float, width: float, kind: str = "hard",
                 max_retries: int = 100, clip_label: bool = False):
        if kind not in VICINITY_KINDS:
            raise CgankdInputError(f"unknown vicinity {kind!r}; known: {VICINITY_KINDS}")
        if not width > 0:
            raise CgankdInputError(f"vicinity width (kappa or nu) must be > 0, got {width}")
        labels = torch.as_tensor(np.asarray(labels_norm, dtype=np.float64).ravel())
        self.kind, self.sigma, self.max_retries = kind, float(sigma), int(max_retries)
        self.clip_label = bool(clip_label)
        self.nu = float(width) if kind == "soft" else None
        # Half-width of the window in which real labels are taken: kappa, or where the soft
        # weight exp(-nu d^2) equals SOFT_CUTOFF.
        self.half_width = float(width) if kind == "hard" else math.sqrt(-math.log(SOFT_CUTOFF)
                                                                        / float(width))
        self.sorted_labels, self.order = torch.sort(labels)
        self.distinct = torch.unique(labels)

    def _draw_targets(self, base: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noisy = base + self.sigma * torch.randn(len(base), generator=generator,
                                                dtype=torch.float64)
        return noisy.clamp(0, 1) if self.clip_label else noisy

    def sample_targets(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n labels y_u + eps (the G step's labels; clipped to [0, 1] under clip_label),
        float32."""
        base = self.distinct[torch.randint(len(self.distinct), (n,), generator=generator)]
        return self._draw_targets(base, generator).float()

    def _window(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[lo, hi) positions in the sorted labels of those within half_width of each target."""
        lo = torch.searchsorted(self.sorted_labels, target - self.half_width, right=False)
        hi = torch.searchsorted(self.sorted_labels, target + self.half_width, right=True)
        return lo, hi

    def sample(self, n: int, generator: torch.Generator | None = None) -> VicinalBatch:
        base = self.distinct[torch.randint(len(self.distinct), (n,), generator=generator)]
        target = self._draw_targets(base, generator)
        lo, hi = self._window(target)
        for _ in range(self.max_retries):
            empty = hi == lo
            if not empty.any():
                break
            # Redraw eps only where no real label is close enough to the target.
            target[empty] = self._draw_targets(base[empty], generator)
            lo[empty], hi[empty] = self._window(target[empty])
        empty = hi == lo
        if empty.any():
            k = int(torch.nonzero(empty)[0])
            raise CgankdInputError(
                f"no training label within {self.half_width:.6g} of the targets drawn around "
                f"label {float(base[k]):.6g} after {self.max_retries} redraws of eps (sigma "
                f"{self.sigma:.6g}); widen kappa (lower nu) or lower sigma")
        offset = (torch.rand(n, generator=generator, dtype=torch.float64) * (hi - lo)).long()
        pick = lo + torch.minimum(offset, hi - lo - 1)  # guards against rounding up to hi
        real_rows = self.order[pick]
        low = (target - self.half_width).clamp(0, 1)
        high = (target + self.half_width).clamp(0, 1)
        fake = low + torch.rand(n, generator=generator, dtype=torch.float64) * (high - low)
        real_label = self.sorted_labels[pick]
        if self.kind == "soft":
            real_weight = torch.exp(-self.nu * (real_label - target) ** 2)
            fake_weight = torch.exp(-self.nu * (fake - target) ** 2)
        else:
            real_weight = fake_weight = torch.ones(n, dtype=torch.float64)
        return VicinalBatch(real_rows=real_rows, target=target.float(),
                            fake_label=fake.float(), real_weight=real_weight.float(),
                            fake_weight=fake_weight.float())
