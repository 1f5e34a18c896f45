"""Train the conditional GAN: class-conditional (classification) or CcGAN (regression).

One loop serves both tasks; they differ only in how a D step's labels are drawn:
classification takes real images with their classes and fakes at uniform classes; regression
draws CcGAN vicinal batches (target y*, real images near y*, fakes at labels near y*, optional
soft weights). Each iteration runs ``n_dis`` D steps and one G step, DiffAugment on every image
D sees, then updates the EMA generator that is used for sampling.

Outputs in ``out_dir``: ``log.jsonl`` (one record per iteration), ``checkpoint.pt`` (latest,
every ``checkpoint_every`` iterations and at the end; a rerun resumes from it),
``samples.png`` (+ ``samples/iter_*.png`` every ``sample_every``) and ``generator.pt``, the
EMA generator with everything ``generate.load_generator`` needs.

``accel`` options (``cgankd.accel``) apply, except that ``amp: auto`` keeps the GAN in fp32.
Under torchrun (``cgankd.distributed``) every rank draws the same global batches, latents and
augmentation settings and trains G and D on its share; only rank 0 writes files.
"""

import contextlib
import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cgankd import distributed
from cgankd.accel import Accel, backward_step, checked_accel_options, resolve_accel
from cgankd.conventions import LabelScale, to_float
from cgankd.device import pick_device, seed_everything, set_threads
from cgankd.errors import CgankdInputError
from cgankd.gan.diffaug import diff_augment
from cgankd.gan.grid import save_grid
from cgankd.gan.label_embedding import DIM_EMBED, Y2H, pretrain_label_embedding
from cgankd.gan.losses import GAN_LOSSES
from cgankd.gan.models import build_discriminator, build_generator, encode_labels
from cgankd.gan.vicinity import VicinalSampler, nu_from_kappa, rule_of_thumb
from cgankd.h5io import Split, read_split
from cgankd.provenance import config_hash
from cgankd.train.resume import Resume, save_checkpoint
from cgankd.stage_options.gan import GAN_DEFAULTS, LABEL_INPUTS, TASKS, checked_gan_options

# The options' defaults and checks live torch-free (the workflow checks them at plan time);
# DEFAULTS, TASKS and LABEL_INPUTS stay importable from here.
DEFAULTS = GAN_DEFAULTS
# Options that do not change the training trajectory: a rerun that changes only these resumes.
NOT_IN_TRAJECTORY = ("iterations", "checkpoint_every", "checkpoint_seconds", "sample_every")
GRID_COLUMNS = 10  # samples per class row / labels per sweep row
# The EMA of BN running statistics does not match the EMA'd weights (samples in eval mode come
# out wrong); as BigGAN's "standing statistics", they are re-estimated for the EMA generator
# from this many batches of fresh z and labels before it samples or is saved.
STANDING_BATCHES = 16
STANDING_SEED = 20210407  # fixed: standing statistics never touch the training RNG
GRID_MAX_ROWS = 20  # classes shown when there are more
CHECKPOINT = "checkpoint.pt"
ILI_CHECKPOINT = "ili_checkpoint.pt"  # the label embedding's pretraining (label_input: ili)
GENERATOR = "generator.pt"
LOG = "log.jsonl"
GRID = "samples.png"


def resolve_options(options: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    """Merge ``options`` over DEFAULTS, check every value up front, resolve "auto"."""
    if task not in TASKS:
        raise CgankdInputError(f"unknown task {task!r} in the training split; known: {TASKS}")
    return checked_gan_options(options, task)


def data_fingerprint(split: Split) -> str:
    """Content hash of the training split (images, labels, attributes): a resume must see the
    same data. Hashed from the arrays, not the file: ``train_cgan`` receives a ``Split``."""
    digest = hashlib.sha256()
    for array in (split.images, split.labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(config_hash(split.attrs).encode())
    return digest.hexdigest()[:16]


class DBatch(NamedTuple):
    """What one D step compares: real images and fakes, and the labels D is told."""

    real_index: torch.Tensor
    real_cond: torch.Tensor  # label D sees with each real image
    fake_label: torch.Tensor  # label each fake is generated at
    fake_cond: torch.Tensor  # label D sees with each fake
    real_weight: torch.Tensor | None
    fake_weight: torch.Tensor | None


class ClassLabels:
    """Classification: real images with their classes, fakes at uniformly drawn classes."""

    def __init__(self, labels: np.ndarray, num_classes: int):
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.num_classes = num_classes

    def d_batch(self, n: int, rng: torch.Generator) -> DBatch:
        index = torch.randint(len(self.labels), (n,), generator=rng)
        fake = self.g_labels(n, rng)
        return DBatch(index, self.labels[index], fake, fake, None, None)

    def g_labels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randint(self.num_classes, (n,), generator=rng)

    def grid_labels(self) -> tuple[torch.Tensor, int]:
        rows = min(self.num_classes, GRID_MAX_ROWS)
        classes = torch.linspace(0, self.num_classes - 1, rows).round().long()
        return classes.repeat_interleave(GRID_COLUMNS), rows


class VicinalLabels:
    """Regression: CcGAN vicinal batches, D conditioned on the target label y* for both."""

    def __init__(self, sampler: VicinalSampler):
        self.sampler = sampler

    def d_batch(self, n: int, rng: torch.Generator) -> DBatch:
        b = self.sampler.sample(n, rng)
        soft = self.sampler.kind == "soft"
        return DBatch(b.real_index, b.target, b.fake_label, b.target,
                      b.real_weight if soft else None, b.fake_weight if soft else None)

    def g_labels(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return self.sampler.sample_targets(n, rng)

    def grid_labels(self) -> tuple[torch.Tensor, int]:
        """A sweep of GRID_COLUMNS labels over [0, 1] per row, one row per fixed z."""
        return torch.linspace(0, 1, GRID_COLUMNS).repeat(GRID_COLUMNS), GRID_COLUMNS


MODE_SEEKING_EPS = 1e-5


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


@dataclass
class GanSetup:
    """Everything built from the split and the options before the first iteration."""

    task: str
    condition: str  # class | scalar | vector (see models.py)
    images: torch.Tensor  # uint8 (N, C, H, W) on the device
    labels: ClassLabels | VicinalLabels
    gen_kwargs: dict[str, Any]
    disc_kwargs: dict[str, Any]
    label_meta: dict[str, Any]  # num_classes, or label_min/label_max and vicinity parameters


def _check_images(split: Split) -> tuple[int, int]:
    _, channels, height, width = split.images.shape
    if height != width:
        raise CgankdInputError(f"GAN training needs square images, got {height}x{width}")
    if len(split) < 2:
        raise CgankdInputError(f"GAN training needs at least 2 images, got {len(split)}")
    return channels, height


def _class_setup(split: Split) -> tuple[ClassLabels, dict[str, Any]]:
    if "num_classes" not in split.attrs:
        raise CgankdInputError("classification split has no 'num_classes' attribute")
    num_classes = int(split.attrs["num_classes"])
    counts = np.bincount(split.labels.astype(np.int64), minlength=num_classes) \
        if split.labels.min() >= 0 else None
    if counts is None or len(counts) > num_classes:
        raise CgankdInputError(f"class labels must lie in [0, {num_classes}), found "
                               f"{int(split.labels.min())}..{int(split.labels.max())}")
    if (counts == 0).any():
        raise CgankdInputError(f"class {int(np.argmin(counts))} has no training images: a "
                               f"conditional GAN cannot learn it (label counts {counts.tolist()})")
    return ClassLabels(split.labels, num_classes), {"num_classes": num_classes}


def _regression_setup(split: Split, opts: dict[str, Any]) -> tuple[VicinalLabels, dict[str, Any]]:
    for key in ("label_min", "label_max"):
        if key not in split.attrs:
            raise CgankdInputError(f"regression split has no {key!r} attribute")
    scale = LabelScale.from_attrs(split.attrs)
    y = scale.normalise(split.labels.astype(np.float64))
    if y.min() < -1e-6 or y.max() > 1 + 1e-6:
        raise CgankdInputError(f"regression labels {split.labels.min()}..{split.labels.max()} "
                               f"fall outside label_min/label_max {scale.low}..{scale.high}")
    sigma, kappa_base = rule_of_thumb(y, opts["m_kappa"])
    sigma = sigma if opts["sigma"] is None else float(opts["sigma"])
    kappa_base = kappa_base if opts["kappa"] is None else float(opts["kappa"])
    width = kappa_base if opts["vicinity"] == "hard" else nu_from_kappa(kappa_base)
    sampler = VicinalSampler(y, sigma, width, opts["vicinity"], opts["vicinity_max_retries"])
    meta = {**scale.as_dict(), "sigma": sigma, "kappa_base": kappa_base,
            "vicinity": opts["vicinity"],
            **({"nu": width} if opts["vicinity"] == "soft" else {"kappa": width})}
    return VicinalLabels(sampler), meta


def build_setup(split: Split, opts: dict[str, Any], device: torch.device) -> GanSetup:
    channels, resolution = _check_images(split)
    task = split.task
    if task == "classification":
        labels, meta = _class_setup(split)
        condition = "class"
    else:
        labels, meta = _regression_setup(split, opts)
        condition = "scalar" if opts["label_input"] == "nli" else "vector"
    common = {"resolution": resolution, "channels": channels, "condition": condition,
              "num_classes": meta.get("num_classes", 0),
              "dim_cond": DIM_EMBED if condition == "vector" else 0,
              "attention_res": opts["attention_res"]}
    # Hierarchical z feeds z chunks to vector-conditioned BNs; NLI's BNs take no condition.
    hier = bool(opts["hier"]) and condition != "scalar"
    gen_kwargs = {**common, "dim_z": opts["dim_z"], "ch": opts["g_ch"], "mults": opts["g_mults"],
                  "dim_shared": opts["dim_shared"], "hier": hier,
                  "native_resolution": opts["native_resolution"]}
    disc_kwargs = {**common, "ch": opts["d_ch"], "mults": opts["d_mults"]}
    images = torch.as_tensor(split.images).to(device)
    return GanSetup(task, condition, images, labels, gen_kwargs, disc_kwargs, meta)


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
        real = to_float(self.setup.images[batch.real_index[share].to(self.device)])
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


def generator_payload(final: nn.Module, trainer: Trainer, *, options_hash: str, seed: int,
                      iterations: int) -> dict[str, Any]:
    """What ``generator.pt`` holds: all ``generate.load_generator`` needs, plain values only."""
    setup, opts = trainer.setup, trainer.opts
    return {"format": "cgankd-generator/1", "backbone": opts["backbone"],
            "generator_kwargs": setup.gen_kwargs, "state_dict": final.state_dict(),
            "task": setup.task, **setup.label_meta,
            "label_input": opts["label_input"] if setup.task == "regression" else None,
            "y2h_state_dict": None if trainer.y2h is None else trainer.y2h.state_dict(),
            "options": opts, "config_hash": options_hash, "seed": seed,
            "iterations": iterations}


def _pretrain_or_restore_y2h(split: Split, opts: dict[str, Any], device: torch.device,
                             checkpoint: Mapping[str, Any] | None, out: Path, seed: int,
                             progress: bool, world: distributed.World,
                             resume: Resume) -> nn.Module | None:
    if split.task != "regression" or opts["label_input"] != "ili":
        return None
    if checkpoint is not None:
        y2h = Y2H().to(device)
        y2h.load_state_dict(checkpoint["y2h"])
        return y2h.eval().requires_grad_(False)
    ili = Resume(out / ILI_CHECKPOINT, resume.parts, desc="ILI", every=1,
                 seconds=opts["checkpoint_seconds"], device=device)
    _, y2h, curves = pretrain_label_embedding(
        split, opts, device, generator=torch.Generator().manual_seed(seed + 1),
        progress=progress and world.main, resume=ili)
    # Every rank pretrains from the same seed; rank 0's copy is the one all condition on, so
    # that GPU-dependent rounding cannot give the ranks different label embeddings.
    world.broadcast_module(y2h)
    if world.main:
        (out / "ili_pretrain.json").write_text(json.dumps(curves))
    return y2h


def _check_world(opts: dict[str, Any], world: distributed.World) -> None:
    if opts.get("mode_seeking") and opts["batch_size"] % (2 * world.size):
        raise CgankdInputError(f"option gan.batch_size {opts['batch_size']} must be divisible "
                               f"by 2 x {world.size} processes with gan.mode_seeking: each "
                               f"process compares pairs of its own rows")
    if opts["batch_size"] % world.size:
        raise CgankdInputError(f"option gan.batch_size {opts['batch_size']} must be divisible "
                               f"by the {world.size} processes (GPUs) training the GAN")


def train_cgan(train_split: Split, options: Mapping[str, Any] | None, out_dir: str | Path, *,
               device: str = "auto", seed: int = 0, threads: int | None = None,
               progress: bool = True,
               on_iteration: Callable[[int, dict[str, float]], None] | None = None,
               accel: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train on ``train_split``, writing log, checkpoints, sample sheets and ``generator.pt``.

    A rerun with the same ``out_dir``, options (apart from iterations and output cadence), seed
    and data resumes from the last checkpoint. ``on_iteration(it, record)`` is called after each
    iteration's record is logged (progress hooks; tests use it to simulate a kill). ``accel``
    holds ``cgankd.accel`` options. Under torchrun only rank 0 writes files.
    """
    start_time = time.time()
    opts = resolve_options(options, train_split.attrs.get("task"))
    accel_opts = checked_accel_options(accel)
    world = distributed.current()
    _check_world(opts, world)
    set_threads(threads)
    dev = pick_device(device)
    acc = resolve_accel(accel_opts, dev, auto_amp=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options_hash = config_hash(opts)
    main = world.main  # the one rank that writes the log, samples and checkpoints
    # Checkpoints from before the amp option hold fp32 runs.
    resume = Resume(out / CHECKPOINT, {
        "config": config_hash({"options": {k: v for k, v in opts.items()
                                           if k not in NOT_IN_TRAJECTORY}, "seed": seed}),
        "inputs": {"train": data_fingerprint(train_split)}},
        desc="cGAN", every=opts["checkpoint_every"], seconds=opts["checkpoint_seconds"],
        log_path=out / LOG, match={"amp": (acc.amp, "fp32")}, device=dev)
    checkpoint = resume.load()

    seed_everything(seed)  # the nets' initialisation
    setup = build_setup(train_split, opts, dev)
    y2h = _pretrain_or_restore_y2h(train_split, opts, dev, checkpoint, out, seed, progress,
                                   world, resume)
    trainer = Trainer(setup, opts, dev, y2h, acc, world)
    trainer.rng.manual_seed(seed)
    start, history = 0, []  # history: every log record so far, kept in each checkpoint
    if checkpoint is not None:
        trainer.load_state(checkpoint)
        start, history = int(checkpoint["iteration"]), list(checkpoint["history"])
        if main:
            print(f"cGAN: resuming from iteration {start} ({resume.path})", flush=True)
    else:
        resume.write_log([])  # an earlier, unresumable run's records go
    trainer.start_ranks()

    grid_labels, grid_rows = setup.labels.grid_labels()
    grid_z = torch.randn(len(grid_labels), opts["dim_z"],
                         generator=torch.Generator().manual_seed(seed + 2))

    def save_checkpoint_at(it: int) -> None:
        resume.save({"format": "cgankd-gan-checkpoint/1", "iteration": it, **trainer.state(),
                     "y2h": None if y2h is None else y2h.state_dict(), "options": opts,
                     "config_hash": options_hash}, history)

    record: dict[str, float] = {}
    with (open(out / LOG, "a") if main else contextlib.nullcontext()) as log, \
            resume.catching_signals():
        bar = tqdm(range(start + 1, opts["iterations"] + 1), desc="cGAN",
                   disable=not (progress and main), initial=start, total=opts["iterations"])
        for it in bar:
            tick = time.time()
            record = trainer.iteration(it)
            record = {"iteration": it, **record, "seconds": round(time.time() - tick, 4)}
            history.append(record)
            if main:
                log.write(json.dumps(record, sort_keys=True) + "\n")
                log.flush()
            if it % 50 == 0:
                bar.set_postfix(loss_d=f"{record['loss_d']:.3f}", loss_g=f"{record['loss_g']:.3f}")
            if on_iteration is not None:
                on_iteration(it, record)
            if main and opts["sample_every"] and it % opts["sample_every"] == 0:
                save_grid(trainer.sample(trainer.standing_generator(), grid_z, grid_labels),
                          grid_rows, out / "samples" / f"iter_{it:06d}.png")
            # The last iteration's checkpoint stays: raising gan.iterations resumes from it.
            if resume.due(it, opts["iterations"]) or it == opts["iterations"]:
                save_checkpoint_at(it)
                if it < opts["iterations"]:  # a stop asked at the end just lets it finish
                    resume.stop_if_asked(it)

    if main:
        final = trainer.standing_generator()
        save_grid(trainer.sample(final, grid_z, grid_labels), grid_rows, out / GRID)
        save_checkpoint(out / GENERATOR, generator_payload(
            final, trainer, options_hash=options_hash, seed=seed,
            iterations=max(start, opts["iterations"])))
    return {"task": setup.task, "backbone": opts["backbone"], "start_iteration": start,
            "iterations": max(start, opts["iterations"]), "seconds": time.time() - start_time,
            "last": record, "config_hash": options_hash, "generator": str(out / GENERATOR),
            "grid": str(out / GRID), "log": str(out / LOG),
            "accel": {**acc.summary(), "processes": world.size}, **setup.label_meta}


def train_cgan_file(train_h5: str | Path, options: Mapping[str, Any] | None,
                    out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """``train_cgan`` on a split file: the form a torchrun worker receives (JSON-able)."""
    return train_cgan(read_split(train_h5), options, out_dir, **kwargs)
