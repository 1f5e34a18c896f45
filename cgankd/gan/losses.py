"""GAN losses on discriminator logits, with optional per-sample weights (CcGAN's soft vicinity).

Weighted terms are mean(w * l), not normalised by sum(w): the CcGAN formulation, where a
real or fake image far from the target label simply counts less.

- hinge: D: mean(w_r relu(1 - d_r)) + mean(w_f relu(1 + d_f)); G: -mean(w d_f).
- vanilla (non-saturating): D: mean(w_r softplus(-d_r)) + mean(w_f softplus(d_f)), i.e.
  -log sigmoid(d_r) - log(1 - sigmoid(d_f)); G: mean(w softplus(-d_f)) = -mean(log sigmoid d_f).
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.nn.functional import relu, softplus

from cgankd.registry import Registry

Weights = torch.Tensor | None


def weighted_mean(values: torch.Tensor, weights: Weights = None) -> torch.Tensor:
    return (values * weights).mean() if weights is not None else values.mean()


class GanLoss(NamedTuple):
    discriminator: Callable[[torch.Tensor, torch.Tensor, Weights, Weights], torch.Tensor]
    generator: Callable[[torch.Tensor, Weights], torch.Tensor]


GAN_LOSSES = Registry("GAN loss")


def hinge_d(d_real: torch.Tensor, d_fake: torch.Tensor, w_real: Weights = None,
            w_fake: Weights = None) -> torch.Tensor:
    return weighted_mean(relu(1 - d_real), w_real) + weighted_mean(relu(1 + d_fake), w_fake)


def hinge_g(d_fake: torch.Tensor, weights: Weights = None) -> torch.Tensor:
    return -weighted_mean(d_fake, weights)


def vanilla_d(d_real: torch.Tensor, d_fake: torch.Tensor, w_real: Weights = None,
              w_fake: Weights = None) -> torch.Tensor:
    return weighted_mean(softplus(-d_real), w_real) + weighted_mean(softplus(d_fake), w_fake)


def vanilla_g(d_fake: torch.Tensor, weights: Weights = None) -> torch.Tensor:
    return weighted_mean(softplus(-d_fake), weights)


GAN_LOSSES.register("hinge")(GanLoss(hinge_d, hinge_g))
GAN_LOSSES.register("vanilla")(GanLoss(vanilla_d, vanilla_g))
