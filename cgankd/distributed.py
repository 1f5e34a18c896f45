"""Data-parallel training in processes started by torchrun: ranks, batch shares, DDP, rank 0.

torchrun starts one process per GPU with RANK, WORLD_SIZE and LOCAL_RANK in the environment.
Every rank draws the same global batch from the same seeded generator and trains on its own
contiguous share of it; DDP averages the gradients, so an update equals the one-process update
of the whole batch up to the order of floating-point sums and, for BatchNorm, the statistics of
each rank's share (SyncBatchNorm, used on CUDA, computes them over the global batch). Only
rank 0 writes files. Without torchrun ``current()`` is a one-process world whose helpers do
nothing, so the training loops call them unconditionally.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes outputs, checkpoints and logs."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous rows of a global batch of ``n`` (sizes differ by at most 1)."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    def sync_batchnorm(self, module: nn.Module, device: torch.device) -> nn.Module:
        """BatchNorm layers computing statistics over the global batch: CUDA only (gloo has no
        SyncBatchNorm); call before the optimizer is built and before ``wrap``."""
        if self.parallel and device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return module

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` under DDP (gradients averaged over ranks in backward), else itself.

        Keep the unwrapped module for state dicts and for passes that must not synchronise.
        """
        if not self.parallel:
            return module
        device_ids = [device.index if device.index is not None else self.local_rank] \
            if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """Per-rank scalars (losses of each share) averaged over the ranks, for logging."""
        if not self.parallel or not values:
            return values
        total = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return dict(zip(values, (total / self.size).tolist()))

    def barrier(self) -> None:
        if self.parallel:
            dist.barrier()

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (nets trained before DDP starts)."""
        if self.parallel:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def current() -> World:
    """The world of this process: torchrun's group when one is initialised, else one process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(),
                     int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def join(device_request: str) -> tuple[World, str]:
    """Join the group torchrun set up; return the world and the device this rank trains on.

    Each rank takes the GPU of its LOCAL_RANK (a configured ``cuda:N`` would put every rank on
    one GPU) with NCCL; CPU ranks (``device: cpu`` or no GPU) use gloo.
    """
    rank, size, local_rank = (int(os.environ[key]) for key in TORCHRUN_ENV)
    cuda = device_request != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")  # env:// rendezvous from torchrun
    return World(rank, size, local_rank), f"cuda:{local_rank}" if cuda else "cpu"


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
