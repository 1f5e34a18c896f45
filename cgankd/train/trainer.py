"""One training loop for teachers and students, resumable and deterministic.

Each step's batch rows and augmentation draws are functions of (seed, step) alone, so a run
killed after a checkpoint and resumed gives the same model as one that was never stopped.
Validation runs every ``eval_every`` steps; the weights with the best validation score are
kept (never selected on test).
"""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cgankd.conventions import LabelScale, to_float
from cgankd.h5io import atomic_path
from cgankd.train.augment import augment
from cgankd.train.checkpoint import cpu_state, load_checkpoint, save_checkpoint
from cgankd.train.recipe import lr_lambda
from cgankd.train.tensorset import TensorSet

STEP_SEED_STRIDE = 1_000_003  # a prime: (seed, step) pairs never share a generator seed


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_step: int
    best_val: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


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


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int,
            device: torch.device) -> torch.Tensor:
    """Net outputs for uint8 ``images`` (on any device), in eval mode, as float CPU tensor."""
    was_training = net.training
    net.eval()
    outs = [net(to_float(images[i:i + batch_size].to(device))).float().cpu()
            for i in range(0, len(images), batch_size)]
    net.train(was_training)
    return torch.cat(outs)


def score(outputs: torch.Tensor, labels: torch.Tensor, task: str,
          label_scale: LabelScale | None) -> dict[str, float]:
    """Validation metrics: accuracy (%) or MAE in original units; ``score`` is higher-better."""
    labels = labels.cpu()
    if task == "classification":
        acc = 100.0 * (outputs.argmax(1) == labels).float().mean().item()
        return {"accuracy": acc, "score": acc}
    pred = label_scale.predicted(outputs)
    mae = (pred - label_scale.denormalise(labels.float())).abs().mean().item()
    return {"mae": mae, "score": -mae}


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(h, sort_keys=True) + "\n" for h in history))


def fit(objective: torch.nn.Module, student: torch.nn.Module, train: TensorSet, val: TensorSet,
        recipe: Mapping[str, Any], *, task: str, label_scale: LabelScale | None,
        device: torch.device, seed: int, checkpoint_path: str | Path, log_path: str | Path,
        fingerprint: str, desc: str = "train", progress: bool = True,
        on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``objective`` (whose ``student`` is scored on ``val``) for ``recipe['steps']``.

    ``checkpoint_path`` holds the resumable state; a checkpoint with another ``fingerprint``
    (other recipe, data or net) is ignored. ``on_step`` is a test hook called after each step.
    """
    steps, batch_size = int(recipe["steps"]), int(recipe["batch_size"])
    objective.to(device)
    train_dev, val_dev = train.to(device), val.to(device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=float(recipe["lr"]), momentum=float(recipe["momentum"]),
                                weight_decay=float(recipe["weight_decay"]),
                                nesterov=bool(recipe["nesterov"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    rows_of = BatchRows(len(train), batch_size, seed)

    start, history = 0, []
    best = {"state": None, "step": -1, "val": {"score": float("-inf")}}
    checkpoint_path = Path(checkpoint_path)
    if checkpoint_path.is_file():
        ckpt = load_checkpoint(checkpoint_path, device)
        if ckpt.get("fingerprint") == fingerprint:
            objective.load_state_dict(ckpt["objective"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            start, history = int(ckpt["step"]), list(ckpt["history"])
            best = {"state": ckpt["best_state"], "step": int(ckpt["best_step"]),
                    "val": dict(ckpt["best_val"])}
            print(f"{desc}: resuming from step {start} ({checkpoint_path})")

    running: dict[str, float] = {}
    n_running, t0 = 0, time.perf_counter()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress, mininterval=5,
               dynamic_ncols=True)
    objective.train()
    for step in range(start, steps):
        torch.manual_seed(seed * STEP_SEED_STRIDE + step)  # dropout, CRD negatives
        gen = torch.Generator().manual_seed(seed * STEP_SEED_STRIDE + step)
        x, y, idx = train_dev.batch(rows_of(step).to(device))
        x = augment(x, crop_pad=int(recipe["crop_pad"]), flip=bool(recipe["flip"]), generator=gen)
        loss, parts = objective(x, y, idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        for key, value in parts.items():
            running[key] = running.get(key, 0.0) + value
        n_running += 1
        done = step + 1
        if done % int(recipe["eval_every"]) == 0 or done == steps:
            val_metrics = score(predict(student, val_dev.images, int(recipe["eval_batch_size"]),
                                        device), val_dev.labels, task, label_scale)
            history.append({"step": done, "lr": optimizer.param_groups[0]["lr"],
                            "train": {k: v / n_running for k, v in running.items()},
                            "val": val_metrics, "seconds": time.perf_counter() - t0})
            running, n_running = {}, 0
            if val_metrics["score"] > best["val"]["score"]:
                best = {"state": cpu_state(student), "step": done, "val": val_metrics}
            bar.set_postfix(loss=f"{history[-1]['train']['total']:.3f}",
                            val=f"{val_metrics['score']:.2f}")
            _write_history(Path(log_path), history)
        if done % int(recipe["checkpoint_every"]) == 0 and done < steps:
            save_checkpoint({"fingerprint": fingerprint, "step": done,
                             "objective": objective.state_dict(),
                             "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "history": history,
                             "best_state": best["state"], "best_step": best["step"],
                             "best_val": best["val"]}, checkpoint_path)
        bar.update(1)
        if on_step is not None:
            on_step(done)
    bar.close()
    checkpoint_path.unlink(missing_ok=True)  # the finished model supersedes it
    return TrainResult(best_state=best["state"], best_step=best["step"], best_val=best["val"],
                       history=history)
