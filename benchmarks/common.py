"""What every benchmark script shares: device/thread flags, timing, and reporting ratios."""

import argparse
import json
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from cgankd.device import pick_device


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    return p


def setup(args: argparse.Namespace) -> torch.device:
    torch.set_num_threads(args.threads)
    return pick_device(args.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of fn(), with the device's queued work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """This process's peak resident memory: /proc's VmHWM where there is one. On Linux,
    ru_maxrss keeps the high-water mark of the process before exec, which for a spawned child
    is the parent's resident size at fork: every side would report the parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def report(result: dict, keys: Sequence[str], out: Path | None) -> None:
    """Print the ratios that matter; write the whole result as JSON when asked."""
    for key in keys:
        print(f"{key:>28}: {result[key]:.3f}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
