"""The ``train_cgan`` stage: train the conditional GAN, class-conditional (classification) or
CcGAN (regression), on the training split.

The stage's entry. The pieces, one job each: the options' defaults and checks
(``cgankd.stage_options.gan``, torch-free), and in ``cgankd.gan`` the label strategies and ILI
pretraining (``conditioning``), the training step (``trainer``), the resumable loop and its
outputs (``loop``) and the generator file format (``generator_file``).

``accel`` options (``cgankd.accel``) apply, except that ``amp: auto`` keeps the GAN in fp32.
Under torchrun (``cgankd.distributed``) every rank trains on its share; only rank 0 writes files.
"""

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cgankd import distributed
from cgankd.accel import checked_accel_options, resolve_accel
from cgankd.device import pick_device, seed_everything, set_threads
from cgankd.errors import CgankdInputError
from cgankd.gan.conditioning import build_setup, label_embedding
from cgankd.gan.generator_file import GENERATOR
from cgankd.gan.loop import GRID, LOG, gan_resume, run_training
from cgankd.gan.trainer import Trainer
from cgankd.h5io import Split, read_split
from cgankd.provenance import config_hash
from cgankd.stage_options.gan import GAN_DEFAULTS, LABEL_INPUTS, TASKS, checked_gan_options

# The options' defaults and checks live torch-free (the workflow checks them at plan time);
# DEFAULTS, TASKS and LABEL_INPUTS stay importable from here.
DEFAULTS = GAN_DEFAULTS
__all__ = ["DEFAULTS", "LABEL_INPUTS", "TASKS", "resolve_options", "train_cgan",
           "run"]


def resolve_options(options: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    """Merge ``options`` over DEFAULTS, check every value up front, resolve "auto"."""
    if task not in TASKS:
        raise CgankdInputError(f"unknown task {task!r} in the training split; known: {TASKS}")
    return checked_gan_options(options, task)


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
    resume = gan_resume(out, opts, seed, train_split, acc, dev)
    checkpoint = resume.load()

    # The order below fixes the draws from the global RNG: nets' initialisation after ILI.
    seed_everything(seed)
    setup = build_setup(train_split, opts, dev)
    y2h = label_embedding(train_split, opts, dev, checkpoint, out, seed, progress, world, resume)
    trainer = Trainer(setup, opts, dev, y2h, acc, world)
    trainer.rng.manual_seed(seed)
    start, record = run_training(trainer, resume, checkpoint, out, seed=seed, progress=progress,
                                 on_iteration=on_iteration)
    return {"task": setup.task, "backbone": opts["backbone"], "start_iteration": start,
            "iterations": max(start, opts["iterations"]), "seconds": time.time() - start_time,
            "last": record, "config_hash": config_hash(opts), "generator": str(out / GENERATOR),
            "grid": str(out / GRID), "log": str(out / LOG),
            "accel": {**acc.summary(), "processes": world.size}, **setup.label_meta}


def run(train: str | Path, options: Mapping[str, Any] | None,
        out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """``train_cgan`` on the split file ``train``: the form a torchrun worker receives."""
    return train_cgan(read_split(train), options, out_dir, **kwargs)
