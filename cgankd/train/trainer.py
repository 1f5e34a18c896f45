"""One training loop for teachers and students, resumable and deterministic.

Each step's batch rows and augmentation draws are functions of (seed, step) alone, so a run
killed after a checkpoint and resumed gives the same model as one that was never stopped.
Validation runs every ``eval_every`` steps and at the end; the recipe's ``selection`` keeps the
weights with the best validation score (never selected on test) or the final ones.

Under torchrun (``cgankd.distributed``) every rank draws and augments the same global batch and
trains on its share; every rank validates, so each returns a complete result, and only rank 0
writes the log and checkpoints. ``accel`` options (``cgankd.accel``) set autocast, memory
layout and compilation; their defaults leave a CPU run plain fp32.
"""

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from cgankd import distributed
from cgankd.accel import Accel, backward_step, resolve_accel
from cgankd.conventions import LabelScale, to_float
from cgankd.kd.teacher_cache import teacher_table_for
from cgankd.train.augment import augment_with_views
from cgankd.train.recipe import lr_lambda, resolved_steps
from cgankd.train.resume import Resume, cpu_state
from cgankd.train.tensorset import TensorSet

STEP_SEED_STRIDE = 1_000_003  # a prime: (seed, step) pairs never share a generator seed


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]  # the selected weights ("best" or "last")
    best_step: int  # the step they were taken at; ``steps`` under selection "last"
    best_val: dict[str, float]
    steps: int  # the resolved budget (``recipe.resolved_steps``)
    history: list[dict[str, Any]] = field(default_factory=list)
    accel: dict[str, Any] = field(default_factory=dict)  # resolved settings and process count


class BatchRows:
    """Rows of step ``s``: consecutive slices of per-epoch permutations seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * STEP_SEED_STRIDE + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen)
        return self._perm

    def __call__(self, step: int) -> torch.Tensor:
        start, parts = step * self.batch_size, []
        need = min(self.batch_size, self.n)  # a set smaller than a batch gives whole epochs
        while need > 0:
            epoch, offset = divmod(start, self.n)
            piece = self._permutation(epoch)[offset:offset + need]
            parts.append(piece)
            start, need = start + len(piece), need - len(piece)
        return torch.cat(parts)


class MixedBatchRows:
    """Rows of step ``s`` when the first ``n_real`` rows are real images and the rest fakes:
    ``n_real_per_batch`` rows from the real ones and the rest from the fakes, each drawn by its
    own ``BatchRows`` (so both streams are stateless in the step and a resume draws the same)."""

    def __init__(self, n_real: int, n: int, batch_size: int, n_real_per_batch: int, seed: int):
        self.n_real = n_real
        self.real = BatchRows(n_real, n_real_per_batch, seed)
        # another seed for the fakes' permutations: the two streams must not move in lockstep
        self.fake = BatchRows(n - n_real, batch_size - n_real_per_batch, seed + STEP_SEED_STRIDE)

    def __call__(self, step: int) -> torch.Tensor:
        return torch.cat([self.real(step), self.n_real + self.fake(step)])


def batch_rows(n: int, batch_size: int, seed: int, real_rows: int | None,
               real_fraction: float | None) -> BatchRows | MixedBatchRows:
    """Uniform batches over all ``n`` rows (the paper's), or, with ``real_fraction`` set and a
    training set whose first ``real_rows`` rows are real and the rest fakes, batches holding
    that share of real images whatever the two sets' sizes."""
    if real_fraction is None or real_rows is None or real_rows >= n:
        return BatchRows(n, batch_size, seed)
    # checked_recipe keeps this share at least one image of each kind
    return MixedBatchRows(real_rows, n, batch_size, round(real_fraction * batch_size), seed)


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int,
            device: torch.device, accel: Accel | None = None) -> torch.Tensor:
    """Net outputs for uint8 ``images`` (on any device), in eval mode, as float CPU tensor.

    ``accel`` (the training loop's) runs the passes under its autocast and memory layout.
    """
    was_training = net.training
    net.eval()
    outs = []
    for i in range(0, len(images), batch_size):
        x = to_float(images[i:i + batch_size].to(device))
        if accel is None:
            outs.append(net(x).float().cpu())
            continue
        with accel.autocast():
            outs.append(net(accel.prepare_input(x)).float().cpu())
    net.train(was_training)
    return torch.cat(outs)


def score(outputs: torch.Tensor, labels: torch.Tensor, task: str,
          label_scale: LabelScale | None) -> dict[str, float]:
    """Validation metrics: accuracy (%) or MAE in original units; ``score`` is higher-better.

    ``loss`` is the training loss without KD terms (CE, or MSE on normalised labels): a
    continuous value that breaks ties of a coarse score (accuracy on a small split).
    """
    labels = labels.cpu()
    if task == "classification":
        acc = 100.0 * (outputs.argmax(1) == labels).float().mean().item()
        return {"accuracy": acc, "score": acc,
                "loss": F.cross_entropy(outputs, labels.long()).item()}
    pred = label_scale.predicted(outputs)
    mae = (pred - label_scale.denormalise(labels.float())).abs().mean().item()
    return {"mae": mae, "score": -mae,
            "loss": F.mse_loss(outputs.reshape(-1), labels.float().reshape(-1)).item()}


def selects(selection: str, new: Mapping[str, float], kept: Mapping[str, float]) -> bool:
    """Whether a later evaluation ``new`` replaces the ``kept`` checkpoint's metrics.

    "last" always moves on. "best" takes a higher score; on an equal score, a lower or equal
    validation loss, so a plateau picks its end rather than its first maximum (which on a
    small validation split is often still at the initial learning rate).
    """
    if selection == "last":
        return True
    if new["score"] != kept["score"]:
        return new["score"] > kept["score"]
    return new["loss"] <= kept.get("loss", math.inf)  # checkpoints from before the loss key


def fit(objective: torch.nn.Module, student: torch.nn.Module, train: TensorSet, val: TensorSet,
        recipe: Mapping[str, Any], *, task: str, label_scale: LabelScale | None,
        device: torch.device, seed: int, checkpoint_path: str | Path, log_path: str | Path,
        fingerprint: str | Mapping[str, Any], desc: str = "train", progress: bool = True,
        on_step: Callable[[int], None] | None = None,
        accel: Mapping[str, Any] | None = None, real_rows: int | None = None,
        make_optimizer: Callable[[list], torch.optim.Optimizer] | None = None) -> TrainResult:
    """Train ``objective`` (whose ``student`` is scored on ``val``) for the recipe's budget.

    The step count is ``resolved_steps(recipe, len(train))``; ``recipe['selection']`` picks the
    returned weights. ``checkpoint_path`` holds the resumable state (``cgankd.train.resume``);
    ``fingerprint`` is its resume key: ``resume.key_parts`` of the run's config and input
    files, or a plain string in tests. A checkpoint with another key, step count or autocast
    precision is ignored (one line on stderr says why). SIGINT/SIGTERM stop the run at the
    next step boundary with a checkpoint; besides every ``checkpoint_every`` steps, one is
    written every ``checkpoint_seconds`` of wall time.
    ``accel`` holds ``cgankd.accel`` options. ``on_step`` is a test hook called after each step.
    ``real_rows``: how many leading rows of ``train`` are real images (the rest are fakes), for
    ``recipe['real_fraction']``. ``make_optimizer(params)``: the optimiser, in place of the
    recipe's SGD (the DR extractor's Adam, dre.options.extractor_optimizer); the recipe's
    schedule scales its lr either way.
    """
    steps, batch_size = resolved_steps(recipe, len(train)), int(recipe["batch_size"])
    selection = recipe["selection"]
    world = distributed.current()
    acc = resolve_accel(accel, device)
    objective.to(device)
    objective = world.sync_batchnorm(objective, device)  # swaps layers in place: student too
    acc.prepare_model(objective)
    train_dev, val_dev = train.to(device), val.to(device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = make_optimizer(params) if make_optimizer is not None else torch.optim.SGD(
        params, lr=float(recipe["lr"]), momentum=float(recipe["momentum"]),
        weight_decay=float(recipe["weight_decay"]), nesterov=bool(recipe["nesterov"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe, steps))
    scaler = acc.grad_scaler()
    rows_of = batch_rows(len(train), batch_size, seed, real_rows, recipe.get("real_fraction"))

    start, history = 0, []
    running: dict[str, float] = {}  # train loss sums since the last evaluation, and their count
    n_running = 0
    best = {"state": None, "step": -1, "val": {"score": float("-inf")}}
    # A plain string is a key without input files (tests, callers that hash their own inputs).
    key = {"config": fingerprint, "inputs": {}} if isinstance(fingerprint, str) else fingerprint
    # Checkpoints from before the amp option hold fp32 runs; from before the budget option,
    # runs of the steps they were given.
    resume = Resume(checkpoint_path, key, desc=desc, every=int(recipe["checkpoint_every"]),
                    seconds=recipe.get("checkpoint_seconds"),
                    log_path=log_path, match={"amp": (acc.amp, "fp32"), "steps": (steps, steps)},
                    device=device)
    ckpt = resume.load(device)
    if ckpt is not None:
        objective.load_state_dict(ckpt["objective"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        start, history = int(ckpt["step"]), list(ckpt["history"])
        best = {"state": ckpt["best_state"], "step": int(ckpt["best_step"]),
                "val": dict(ckpt["best_val"])}
        running, n_running = dict(ckpt.get("running", {})), int(ckpt.get("n_running", 0))
        if world.main:
            print(f"{desc}: resuming from step {start} ({resume.path})")
    forward = acc.compiled(world.wrap(objective, device))
    table = None
    if hasattr(objective, "teacher_table"):  # a DistillObjective (tests pass plain modules too)
        table = objective.teacher_table = teacher_table_for(objective, train_dev, recipe, steps,
                                                            acc)

    t0 = time.perf_counter()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not (progress and world.main),
               mininterval=5, dynamic_ncols=True)
    objective.train()
    with resume.catching_signals():
        for step in range(start, steps):
            torch.manual_seed(seed * STEP_SEED_STRIDE + step)  # dropout, CRD negatives
            gen = torch.Generator().manual_seed(seed * STEP_SEED_STRIDE + step)
            x, y, rows = train_dev.batch(rows_of(step).to(device))
            x, views = augment_with_views(x, crop_pad=int(recipe["crop_pad"]),
                                          flip=bool(recipe["flip"]), generator=gen)
            weight = 1.0
            if world.parallel:
                # Augmenting the whole batch on every rank keeps each image's crop and flip what it
                # is in one process. Scaling the share's mean loss by its share of the batch makes
                # DDP's gradient average the whole batch's gradient when shares differ in size.
                share = world.share(len(y))
                weight = (share.stop - share.start) * world.size / len(y)
                x, y, rows, views = x[share], y[share], rows[share], views[share]
            with acc.autocast():
                loss, parts = forward(acc.prepare_input(x), y, rows,
                                      *((views,) if table is not None else ()))
            backward_step(loss if weight == 1.0 else loss * weight, optimizer, scaler)
            scheduler.step()
            for key, value in parts.items():  # weighted: the ranks' average is the batch's mean
                running[key] = running.get(key, 0.0) + value * weight
            n_running += 1
            done = step + 1
            if done % int(recipe["eval_every"]) == 0 or done == steps:
                outputs = predict(student, val_dev.images, int(recipe["eval_batch_size"]), device,
                                  acc)
                val_metrics = score(outputs, val_dev.labels, task, label_scale)
                train_means = world.mean({k: v / n_running for k, v in running.items()}, device)
                history.append({"step": done, "lr": optimizer.param_groups[0]["lr"],
                                "train": train_means,
                                "val": val_metrics, "seconds": time.perf_counter() - t0})
                running, n_running = {}, 0
                if selects(selection, val_metrics, best["val"]):
                    best = {"state": cpu_state(student), "step": done, "val": val_metrics}
                bar.set_postfix(loss=f"{history[-1]['train']['total']:.3f}",
                                val=f"{val_metrics['score']:.2f}")
                resume.write_log(history)
            if resume.due(done, steps):
                resume.save({"step": done, "steps": steps,
                             "objective": objective.state_dict(),
                             "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                             "best_state": best["state"], "best_step": best["step"],
                             "best_val": best["val"], "running": running,
                             "n_running": n_running}, history)
                resume.stop_if_asked(done)
            bar.update(1)
            if on_step is not None:
                on_step(done)
    bar.close()
    resume.finish()
    return TrainResult(best_state=best["state"], best_step=best["step"], best_val=best["val"],
                       steps=steps, history=history,
                       accel={**acc.summary(), "processes": world.size})
