"""Training loop of the conditional DR model on feature vectors (METHOD.md section 3).

Generic on purpose: features in, loss curves out. The caller supplies the real feature
batches (extractor applied to real images) and a function that makes fake features at given
labels (generator + extractor), so this module knows nothing of GANs, extractors or files.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from cgankd.dre.loss import penalised_softplus_loss
from cgankd.errors import CgankdInputError
from cgankd.options import merge_options

Batch = tuple[torch.Tensor, torch.Tensor]  # (features h, labels or label codes)

DEFAULTS: dict[str, Any] = {
    "epochs": 200,                # published cDR-RS setting
    "lr": 1e-4,                   # Adam learning rate, published
    "betas": (0.5, 0.999),        # Adam betas, published
    "weight_decay": 1e-4,         # published
    "milestones": (80, 150),      # epochs at which lr is multiplied by gamma, published
    "gamma": 0.1,                 # lr decay factor at each milestone
    "lam": 0.01,                  # penalty weight of the loss: 0.01 (v3) or 1e-3 (v1)
}


def fit_density_ratio(model: nn.Module, real_batches: Callable[[], Iterable[Batch]],
                      fake_batch: Callable[[torch.Tensor], Batch], *,
                      label_code: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      train_label_code: bool = False,
                      options: Mapping[str, Any] | None = None,
                      where: str = "dre") -> list[dict[str, float]]:
    """Train ``model`` (psi(h, code), e.g. a DRMLP) in place; return one loss dict per epoch.

    real_batches() is called once per epoch and yields (h_real, y_real). For each, the fakes
    are made at the same labels, as published: fake_batch(y_real) -> (h_fake, y_fake).
    label_code maps a y to the code psi is conditioned on (ClassLabelCode for classes, the
    CcGAN's y2h for regression); without it the y's are used as codes directly. Its
    parameters are trained alongside the model only when train_label_code is True (the
    class embedding), never otherwise (y2h belongs to the GAN and stays frozen).
    options override DEFAULTS; ``where`` names the config section in error messages.
    Leaves the model in eval mode (dropout off), ready to score samples.
    """
    opts = merge_options(DEFAULTS, options, where)
    device = next(model.parameters()).device
    params = list(model.parameters())
    if train_label_code:
        if not isinstance(label_code, nn.Module):
            raise CgankdInputError(f"{where}: train_label_code needs a label_code module, "
                                   f"got {type(label_code).__name__}")
        params += list(label_code.parameters())
    optimiser = torch.optim.Adam(params, lr=opts["lr"], betas=tuple(opts["betas"]),
                                 weight_decay=opts["weight_decay"])
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, list(opts["milestones"]),
                                                    gamma=opts["gamma"])

    def encode(y: torch.Tensor) -> torch.Tensor:
        y = y.to(device)
        if label_code is None:
            return y
        with torch.set_grad_enabled(train_label_code):
            return label_code(y)

    def ratios(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(h.to(device), encode(y))

    curves: list[dict[str, float]] = []
    model.train()
    for epoch in range(1, int(opts["epochs"]) + 1):
        lr = optimiser.param_groups[0]["lr"]
        sums: dict[str, float] = {}
        count = 0
        for h_real, y_real in real_batches():
            h_fake, y_fake = fake_batch(y_real)
            loss, parts = penalised_softplus_loss(ratios(h_real, y_real), ratios(h_fake, y_fake),
                                                  lam=opts["lam"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
        if count == 0:
            raise CgankdInputError(f"{where}: real_batches() yielded no batch in epoch {epoch}")
        schedule.step()
        curves.append({"epoch": epoch, "lr": lr, "batches": count,
                       **{key: total / count for key, total in sums.items()}})
    model.eval()
    return curves
