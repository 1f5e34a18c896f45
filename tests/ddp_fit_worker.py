"""A torchrun worker for test_distributed: the trainer on a tiny BatchNorm-free net.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_fit_worker.py OUT

Rank 0 saves the trained weights to OUT/weights.pt; every rank that writes the history or a
checkpoint leaves a marker OUT/<what>.rank<N>, so the test can see that only rank 0 wrote.
``train_tiny`` is also what the test runs in one process, for the comparison.
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cgankd import distributed
from cgankd.train import resume, trainer
from cgankd.train.recipe import checked_recipe
from toy_data import bar_images

# batch 15 over 2 ranks: shares of 7 and 8, so the uneven-share loss weighting is exercised
RECIPE = {"steps": 10, "batch_size": 15, "lr": 0.05, "crop_pad": 1, "flip": True,
          "eval_every": 10, "checkpoint_every": 4, "milestones": [0.5]}


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(F.relu(self.conv(x)).mean(dim=(2, 3)))


class CrossEntropy(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, y, rows=None):
        loss = F.cross_entropy(self.net(x), y)
        return loss, {"total": float(loss.detach())}


def train_tiny(out: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = TinyNet()
    trainer.fit(CrossEntropy(net), net, bar_images(60), bar_images(60, seed=1),
                checked_recipe(RECIPE, "r"), task="classification", label_scale=None,
                device=torch.device("cpu"), seed=0,
                checkpoint_path=out / "resume.pt", log_path=out / "history.jsonl",
                fingerprint="tiny", progress=False)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _marking(function, out: Path, what: str, rank: int):
    def marked(*args, **kwargs):
        (out / f"{what}.rank{rank}").touch()
        return function(*args, **kwargs)
    return marked


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    world, _ = distributed.join("cpu")
    resume.write_jsonl = _marking(resume.write_jsonl, out, "history", world.rank)
    resume.save_checkpoint = _marking(resume.save_checkpoint, out, "checkpoint", world.rank)
    weights = train_tiny(out)
    if world.main:
        torch.save(weights, out / "weights.pt")
    distributed.leave()
