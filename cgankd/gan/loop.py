"""The GAN's resumable training loop: log, checkpoints, sample sheets and the final outputs.

Outputs in ``out_dir``: ``log.jsonl`` (one record per iteration), ``checkpoint.pt`` (latest,
every ``checkpoint_every`` iterations and at the end; a rerun with the same resume key resumes
from it, through ``cgankd.train.resume``), ``samples.png`` (+ ``samples/iter_*.png`` every
``sample_every``) and ``generator.pt`` (``cgankd.gan.generator_file``). Only rank 0 writes.
"""

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cgankd.accel import Accel
from cgankd.formats import GAN_CHECKPOINT, TAG_KEY
from cgankd.gan.generator_file import GENERATOR, write_generator
from cgankd.gan.grid import save_grid
from cgankd.gan.trainer import Trainer
from cgankd.h5io import Split
from cgankd.provenance import config_hash
from cgankd.train.resume import Resume

# Split attributes that say which code wrote a file, not what data it holds.
WRITER_ATTRS = ("source_hash", "package_hash", TAG_KEY)
# Options that do not change the training trajectory: a rerun that changes only these resumes.
NOT_IN_TRAJECTORY = ("iterations", "checkpoint_every", "checkpoint_seconds", "sample_every")
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
GRID = "samples.png"


def data_fingerprint(split: Split) -> str:
    """Content hash of the training split (images, labels, attributes): a resume must see the
    same data. Hashed from the arrays, not the file: ``train_cgan`` receives a ``Split``. The
    attributes that record which code wrote the file (its source hash, its format tag) are left
    out: an edit of prepare_data that writes the same data must not restart a long GAN run."""
    digest = hashlib.sha256()
    for array in (split.images, split.labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    attrs = {k: v for k, v in split.attrs.items() if k not in WRITER_ATTRS}
    digest.update(config_hash(attrs).encode())
    return digest.hexdigest()[:16]


def gan_resume(out: Path, opts: dict[str, Any], seed: int, split: Split, acc: Accel,
               device: torch.device) -> Resume:
    """The GAN's checkpoint, keyed on the options that shape the trajectory, seed and data."""
    # Checkpoints from before the amp option hold fp32 runs.
    return Resume(out / CHECKPOINT, {
        "config": config_hash({"options": {k: v for k, v in opts.items()
                                           if k not in NOT_IN_TRAJECTORY}, "seed": seed}),
        "inputs": {"train": data_fingerprint(split)}},
        desc="cGAN", every=opts["checkpoint_every"], seconds=opts["checkpoint_seconds"],
        log_path=out / LOG, match={"amp": (acc.amp, "fp32")}, device=device)


def run_training(trainer: Trainer, resume: Resume, checkpoint: Mapping[str, Any] | None,
                 out: Path, *, seed: int, progress: bool,
                 on_iteration: Callable[[int, dict[str, float]], None] | None
                 ) -> tuple[int, dict[str, float]]:
    """Resume ``trainer`` from ``checkpoint`` (or start), run to ``iterations``, write the
    sample sheet and ``generator.pt``. Returns the starting iteration and the last record."""
    opts, main = trainer.opts, trainer.world.main  # rank 0 writes log, samples, checkpoints
    options_hash = config_hash(opts)
    start, history = 0, []  # history: every log record so far, kept in each checkpoint
    if checkpoint is not None:
        trainer.load_state(checkpoint)
        start, history = int(checkpoint["iteration"]), list(checkpoint["history"])
        if main:
            print(f"cGAN: resuming from iteration {start} ({resume.path})", flush=True)
    else:
        resume.write_log([])  # an earlier, unresumable run's records go
    trainer.start_ranks()

    grid_labels, grid_rows = trainer.setup.labels.grid_labels()
    grid_z = torch.randn(len(grid_labels), opts["dim_z"],
                         generator=torch.Generator().manual_seed(seed + 2))

    def save_sheet(G: torch.nn.Module, path: Path) -> None:
        save_grid(trainer.sample(G, grid_z, grid_labels), grid_rows, path)

    def save_checkpoint_at(it: int) -> None:
        y2h = trainer.y2h
        resume.save({"format": GAN_CHECKPOINT.tag, "iteration": it, **trainer.state(),
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
                save_sheet(trainer.standing_generator(), out / "samples" / f"iter_{it:06d}.png")
            # The last iteration's checkpoint stays: raising gan.iterations resumes from it.
            if resume.due(it, opts["iterations"]) or it == opts["iterations"]:
                save_checkpoint_at(it)
                if it < opts["iterations"]:  # a stop asked at the end just lets it finish
                    resume.stop_if_asked(it)

    if main:
        final = trainer.standing_generator()
        save_sheet(final, out / GRID)
        write_generator(out / GENERATOR, final, trainer, options_hash=options_hash, seed=seed,
                        iterations=max(start, opts["iterations"]))
    return start, record
