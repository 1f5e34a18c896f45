"""The GAN's training step: the nets, their optimisers and the RNG a checkpoint holds.

Each iteration runs ``n_dis`` D steps and one G step, DiffAugment on every image D sees, then
updates the EMA generator that is used for sampling. Under torchrun (``cgankd.distributed``)
every rank draws the same global batches, latents and augmentation settings and trains G and D
on its share.
"""

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd import distributed
from cgankd.accel import Accel, backward_step
from cgankd.conventions import to_float
from cgankd.gan.conditioning import GanSetup
from cgankd.gan.diffaug import diff_augment
from cgankd.gan.losses import GAN_LOSSES
from cgankd.gan.models import build_discriminator, build_generator, encode_labels

# The EMA of BN running statistics does not match the EMA'd weights (samples in eval mode come
# out wrong); as BigGAN's "standing statistics", they are re-estimated for the EMA generator
# from this many batches of fresh z and labels before it samples or is saved.
STANDING_BATCHES = 16
STANDING_SEED = 20210407  # fixed: standing statistics never touch the training RNG
MODE_SEEKING_EPS = 1e-5  # keeps the mode-seeking term finite when two fakes coincide


def mode_seeking_ratio(images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """mean |G(z_a) - G(z_b)| / mean |z_a - z_b| over the pairs of consecutive rows (a, b)."""
    pairs = len(images) // 2 * 2
    a, b = images[0:pairs:2], images[1:pairs:2]
    za, zb = z[0:pairs:2], z[1:pairs:2]
    return (a - b).abs().mean() / (za - zb).abs().mean()


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, over parameters and float buffers (BN stats)."""
    with torch.no_grad():
        for target, source in zip(ema.state_dict().values(), model.state_dict().values()):
            if target.dtype.is_floating_point:
                target.lerp_(source, 1 - decay)
            else:
                target.copy_(source)


class Trainer:
    """The GAN nets, their optimisers and the RNG: the state a checkpoint holds.

    ``G`` and ``D`` are the plain modules (state dicts, EMA, passes that must not synchronise
    ranks); ``g_train`` and ``d_train`` run the training steps' passes (DDP-wrapped under
    torchrun, compiled when asked). The G step runs D through ``d_local``: D's gradients
    from that pass are thrown away, so averaging them over ranks would be wasted traffic.
    """

    def __init__(self, setup: GanSetup, opts: dict[str, Any], device: torch.device,
                 y2h: nn.Module | None, accel: Accel, world: distributed.World):
        self.setup, self.opts, self.device, self.y2h = setup, opts, device, y2h
        self.accel, self.world = accel, world
        self.G = build_generator(opts["backbone"], **setup.gen_kwargs).to(device)
        self.D = build_discriminator(opts["backbone"], **setup.disc_kwargs).to(device)
        self.accel.prepare_model(self.G)
        self.accel.prepare_model(self.D)
        # The EMA copy keeps plain BatchNorm: rank 0 alone runs it (standing statistics,
        # samples), and a SyncBatchNorm there would wait forever for the other ranks.
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G = self.world.sync_batchnorm(self.G, device)
        betas = tuple(float(b) for b in opts["betas"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=opts["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opts["lr_d"], betas=betas)
        self.scaler_g, self.scaler_d = self.accel.grad_scaler(), self.accel.grad_scaler()
        self.loss = GAN_LOSSES.get(opts["loss"])
        self.rng = torch.Generator()  # every random draw of the loop: resumable from its state

    def start_ranks(self) -> None:
        """Wrap G and D for the training steps; call after a checkpoint is loaded."""
        world, compiled = self.world, self.accel.compiled
        self.g_train = compiled(world.wrap(self.G, self.device))
        self.d_train = compiled(world.wrap(self.D, self.device))
        self.g_local = compiled(self.G) if world.parallel else self.g_train
        self.d_local = compiled(self.D) if world.parallel else self.d_train

    def cond(self, labels: torch.Tensor) -> torch.Tensor:
        return encode_labels(labels.to(self.device), self.setup.condition, self.y2h)

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.opts["dim_z"], generator=self.rng).to(self.device)

    def _augment(self, x: torch.Tensor, share: slice, n: int) -> torch.Tensor:
        """DiffAugment of this rank's ``share`` of one or two (real, fake) global batches of n.

        DiffAugment draws one setting per image, in batch order, from the shared generator.
        A rank augments a global-size batch holding its images at their global rows, so every
        rank consumes the same draws and each image gets the setting it gets in one process.
        """
        if not self.world.parallel or not self.opts["diffaug"]:
            return diff_augment(x, self.opts["diffaug"], self.rng)
        copies = len(x) // (share.stop - share.start)
        rows = torch.cat([torch.arange(share.start, share.stop) + k * n for k in range(copies)]
                         ).to(self.device)
        full = x.new_zeros((copies * n, *x.shape[1:])).index_copy(0, rows, x)
        return diff_augment(full, self.opts["diffaug"], self.rng)[rows]

    def d_step(self) -> dict[str, float]:
        n = self.opts["batch_size"]
        share, acc = self.world.share(n), self.accel
        batch = self.setup.labels.d_batch(n, self.rng)
        z = self._z(n)
        real = to_float(self.setup.images[batch.real_rows[share].to(self.device)])
        with torch.no_grad(), acc.autocast():
            fake = self.g_local(z[share], self.cond(batch.fake_label[share])).float()
        m = len(real)
        images = self._augment(torch.cat([real, fake]), share, n)
        # D has no batch statistics, so one pass over real and fake equals two passes.
        with acc.autocast():
            out = self.d_train(acc.prepare_input(images),
                               torch.cat([self.cond(batch.real_cond[share]),
                                          self.cond(batch.fake_cond[share])]))
        out = out.float()  # losses and logged means in fp32 whatever the autocast
        weights = [None if w is None else w[share].to(self.device)
                   for w in (batch.real_weight, batch.fake_weight)]
        loss = self.loss.discriminator(out[:m], out[m:], *weights)
        backward_step(loss, self.opt_d, self.scaler_d)
        return {"loss_d": loss.item(), "d_real": out[:m].mean().item(),
                "d_fake": out[m:].mean().item()}

    def g_step(self) -> dict[str, float]:
        n = self.opts["batch_size"]
        share, acc = self.world.share(n), self.accel
        seeking = self.opts["mode_seeking"] > 0
        if seeking:  # rows 2i and 2i + 1 share a label: the pairs the mode-seeking term compares
            labels = self.setup.labels.g_labels(n // 2, self.rng).repeat_interleave(2)
        else:
            labels = self.setup.labels.g_labels(n, self.rng)
        z = self._z(len(labels))
        with acc.autocast():
            fake = self.g_train(z[share], self.cond(labels[share]))
        images = self._augment(fake.float(), share, n)
        with acc.autocast():
            out = self.d_local(acc.prepare_input(images), self.cond(labels[share]))
        out = out.float()
        loss = self.loss.generator(out)
        record = {"d_gen": out.mean().item()}
        if seeking:
            ratio = mode_seeking_ratio(fake.float(), z[share].to(fake.device))
            loss = loss + self.opts["mode_seeking"] / (ratio + MODE_SEEKING_EPS)
            record["ms_ratio"] = ratio.item()
        backward_step(loss, self.opt_g, self.scaler_g)
        return {"loss_g": loss.item(), **record}

    def iteration(self, it: int) -> dict[str, float]:
        """Iteration ``it`` (1-based): n_dis D steps, one G step, EMA update."""
        d_logs = [self.d_step() for _ in range(self.opts["n_dis"])]
        record = {k: float(np.mean([d[k] for d in d_logs])) for k in d_logs[0]}
        record.update(self.g_step())
        ema_update(self.G_ema, self.G, self.opts["ema_decay"] if it > self.opts["ema_start"]
                   else 0.0)
        return self.world.mean(record, self.device)

    def state(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(),
                "D": self.D.state_dict(), "opt_G": self.opt_g.state_dict(),
                "opt_D": self.opt_d.state_dict(), "scaler_G": self.scaler_g.state_dict(),
                "scaler_D": self.scaler_d.state_dict(), "amp": self.accel.amp,
                "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.opt_d.load_state_dict(state["opt_D"])
        for scaler, key in ((self.scaler_g, "scaler_G"), (self.scaler_d, "scaler_D")):
            if key in state:  # absent in checkpoints from before the amp option
                scaler.load_state_dict(state[key])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])

    @torch.no_grad()
    def standing_generator(self) -> nn.Module:
        """A copy of the EMA generator, in eval mode, with BN statistics re-estimated for it."""
        G = copy.deepcopy(self.G_ema)
        for module in G.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the batches below
        G.train()
        rng = torch.Generator().manual_seed(STANDING_SEED)
        for _ in range(STANDING_BATCHES):
            labels = self.setup.labels.g_labels(self.opts["batch_size"], rng)
            z = torch.randn(len(labels), self.opts["dim_z"], generator=rng)
            G(z.to(self.device), self.cond(labels))
        return G.eval()

    @torch.no_grad()
    def sample(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return G(z.to(self.device), self.cond(labels))
