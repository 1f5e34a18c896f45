"""CcGAN-ILI label embedding: a regressor x -> h -> y, then y2h trained to invert its last layer.

Improved label input (ILI) conditions G and D on a 128-d embedding h = y2h(y) instead of the
scalar y. The embedding space is learnt from images: (a) a ResNet-34-style regressor maps
x -> h (ReLU) -> y with MSE; (b) an MLP y2h is trained so that h2y(y2h(y~)) = y~ on noisy
labels y~ = clamp(y + N(0, 0.2^2), 0, 1), with h2y (the regressor's last linear layer) frozen,
so y2h(y) lands where images of label y put their features. Optimiser, schedule and y2h's
label set are options (``ili_*``, cgankd/stage_options/gan.py): the authors' SGD with step
decay over the distinct labels, or Adam over every training label.

Resumable: given a ``cgankd.train.resume.Resume``, both steps checkpoint at epoch ends, and a
last checkpoint holds the finished pair, so a GAN killed before its own first checkpoint does
not pretrain again.
"""

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cgankd.conventions import LabelScale, to_float
from cgankd.h5io import Split
from cgankd.blocks.residual import PooledResNet
from cgankd.options import merge_options
from cgankd.train.resume import Resume
# This pretraining's options are defined with the GAN's, torch-free (plan-time checks).
from cgankd.stage_options.gan import ILI_DEFAULTS

DIM_EMBED = 128  # size of h, as CcGAN uses


class LabelEmbedRegressor(nn.Module):
    """ResNet-34-style x -> h (DIM_EMBED, ReLU) -> y; ``h2y`` is the last linear layer.

    The package's one ResNet trunk (``cgankd.blocks.residual``, stride-1 stem for 16-64 px);
    ``width`` scales every stage (0.25: 16..128 channels, small enough for CPU digits).
    """

    def __init__(self, channels: int, *, width: float = 1.0,
                 blocks: tuple[int, ...] | list[int] = (3, 4, 6, 3), dim_embed: int = DIM_EMBED):
        super().__init__()
        self.features = PooledResNet(channels, max(8, round(64 * width)), blocks)
        self.x2h = nn.Sequential(nn.Linear(self.features.embed_dim, dim_embed),
                                 nn.BatchNorm1d(dim_embed), nn.ReLU(inplace=True))
        self.h2y = nn.Linear(dim_embed, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.x2h(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h2y(self.embed(x)).squeeze(1)


class Y2H(nn.Module):
    """y (B,) in [0, 1] -> h (B, DIM_EMBED): 5 linear layers, GroupNorm(8) + ReLU between."""

    def __init__(self, dim_embed: int = DIM_EMBED, groups: int = 8):
        super().__init__()
        layers: list[nn.Module] = []
        in_dim = 1
        for _ in range(4):
            layers += [nn.Linear(in_dim, dim_embed), nn.GroupNorm(groups, dim_embed),
                       nn.ReLU(inplace=True)]
            in_dim = dim_embed
        layers += [nn.Linear(dim_embed, dim_embed), nn.ReLU()]  # h is ReLU'd, like the regressor's
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y.view(-1, 1) + 1e-8)  # the offset keeps y = 0 off the all-zero input


def ili_optimiser(parameters, opts: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimiser of one pretraining step: ``ili_optimizer`` sgd, as the authors
    (train_net_for_label_embed.py:32 and :143 in cGAN-KD's RC49/CcGAN-based_KD), or adam."""
    if opts["ili_optimizer"] == "sgd":
        return torch.optim.SGD(parameters, lr=opts["ili_lr"], momentum=opts["ili_momentum"],
                               weight_decay=opts["ili_weight_decay"])
    return torch.optim.Adam(parameters, lr=opts["ili_lr"], weight_decay=opts["ili_weight_decay"])


def ili_epoch_lr(opts: Mapping[str, Any], milestones, epoch: int, epochs: int) -> float:
    """The lr of 0-based ``epoch``: ``ili_lr`` times ``ili_lr_decay`` per milestone (a fraction
    of ``epochs``) reached, the authors' step decay set at each epoch's start
    (train_net_for_label_embed.py:17-28 and :123-134)."""
    reached = sum(epoch >= round(m * epochs) for m in milestones)
    return float(opts["ili_lr"]) * float(opts["ili_lr_decay"]) ** reached


def _fit(parameters, batch_loss: Callable[[torch.Tensor], torch.Tensor | None], n: int,
         epochs: int, batch_size: int, milestones, opts: Mapping[str, Any],
         generator: torch.Generator, desc: str, progress: bool, *, phase: str,
         nets: Mapping[str, nn.Module], resume: Resume | None = None,
         checkpoint: Mapping[str, Any] | None = None,
         carry: Mapping[str, Any] | None = None) -> list[float]:
    """``epochs`` shuffled passes of n samples in batches of ``batch_size``, the lr stepped at
    ``milestones``; ``batch_loss(indices)`` gives the loss of one batch (None skips it).
    Returns the mean loss per epoch.

    With ``resume``, epoch ends are checkpointed (``phase``, the ``nets``' states, the
    optimiser, the generator, ``carry``); a ``checkpoint`` of this phase continues from there.
    """
    optimiser = ili_optimiser(parameters, opts)
    curve, first = [], 0
    if checkpoint is not None and checkpoint["phase"] == phase:
        optimiser.load_state_dict(checkpoint["optimiser"])
        curve, first = list(checkpoint["curve"]), int(checkpoint["epoch"])
        generator.set_state(checkpoint["generator"])
    for epoch in tqdm(range(first, epochs), desc=desc, disable=not progress, initial=first,
                      total=epochs):
        for group in optimiser.param_groups:
            group["lr"] = ili_epoch_lr(opts, milestones, epoch, epochs)
        total = 0.0
        for idx in torch.randperm(n, generator=generator).split(batch_size):
            loss = batch_loss(idx)
            if loss is None:
                continue
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        curve.append(total / n)
        if resume is not None and resume.due(epoch + 1, epochs):
            resume.save({**(carry or {}), "phase": phase, "epoch": epoch + 1, "curve": curve,
                         "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
                         **{name: net.state_dict() for name, net in nets.items()}}, [])
            resume.stop_if_asked(epoch + 1)
    return curve


def pretrain_label_embedding(split: Split, options: Mapping[str, Any], device: torch.device, *,
                             generator: torch.Generator | None = None, progress: bool = True,
                             resume: Resume | None = None
                             ) -> tuple[LabelEmbedRegressor, Y2H, dict[str, list[float]]]:
    """Train the regressor, then y2h, on ``split``; return both (eval mode) and loss curves.

    ``options`` may hold other keys (the GAN's whole option dict); the ``ili_*`` ones are used.
    ``resume`` checkpoints both steps and continues from its checkpoint.
    """
    opts = merge_options(ILI_DEFAULTS, {k: v for k, v in options.items() if k in ILI_DEFAULTS},
                         "gan")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    x_all = to_float(split.images)
    y_all = torch.as_tensor(LabelScale.from_attrs(split.attrs).normalise(
        split.labels.astype(np.float64)), dtype=torch.float32)

    checkpoint = None if resume is None else resume.load(device)
    phase = None if checkpoint is None else checkpoint["phase"]  # regressor | y2h | done
    # Built in the same order on a resume: the global RNG they draw from stays in step.
    regressor = LabelEmbedRegressor(split.images.shape[1], width=opts["ili_width"],
                                    blocks=opts["ili_blocks"]).to(device).train()
    if checkpoint is not None:
        regressor.load_state_dict(checkpoint["regressor"])

    def regression_loss(idx: torch.Tensor) -> torch.Tensor | None:
        if len(idx) < 2:  # BatchNorm needs two samples
            return None
        return nn.functional.mse_loss(regressor(x_all[idx].to(device)), y_all[idx].to(device))

    if phase in ("y2h", "done"):
        regressor_curve = list(checkpoint["regressor_mse"])
    else:
        regressor_curve = _fit(regressor.parameters(), regression_loss, len(y_all),
                               opts["ili_regressor_epochs"], opts["ili_batch_size"],
                               opts["ili_regressor_milestones"], opts, generator,
                               "ILI regressor", progress, phase="regressor",
                               nets={"regressor": regressor}, resume=resume,
                               checkpoint=checkpoint)
    regressor.eval().requires_grad_(False)

    y2h = Y2H().to(device)
    if phase in ("y2h", "done"):
        y2h.load_state_dict(checkpoint["y2h"])

    # The authors' y2h sees each distinct training label once per epoch
    # (generate_synthetic_data.py:124 and :229); "all" weights labels by their image count.
    y2h_labels = torch.unique(y_all) if opts["ili_y2h_labels"] == "distinct" else y_all

    def inversion_loss(idx: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(len(idx), generator=generator) * opts["ili_label_noise"]
        y_noisy = (y2h_labels[idx] + noise).clamp(0, 1).to(device)
        return nn.functional.mse_loss(regressor.h2y(y2h(y_noisy)).squeeze(1), y_noisy)

    if phase == "done":
        y2h_curve = list(checkpoint["y2h_mse"])
    else:
        y2h_curve = _fit(y2h.parameters(), inversion_loss, len(y2h_labels),
                         opts["ili_y2h_epochs"], opts["ili_y2h_batch_size"] or
                         opts["ili_batch_size"], opts["ili_y2h_milestones"], opts, generator,
                         "ILI y2h", progress, phase="y2h",
                         nets={"regressor": regressor, "y2h": y2h}, resume=resume,
                         checkpoint=checkpoint, carry={"regressor_mse": regressor_curve})
    if resume is not None and phase != "done":
        resume.save({"phase": "done", "regressor": regressor.state_dict(),
                     "y2h": y2h.state_dict(), "regressor_mse": regressor_curve,
                     "y2h_mse": y2h_curve}, [])
    y2h.eval().requires_grad_(False)
    return regressor, y2h, {"regressor_mse": regressor_curve, "y2h_mse": y2h_curve}
