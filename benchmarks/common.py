"""What every benchmark script shares: device/thread flags, timing, and reporting ratios."""

import argparse
import json
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


def report(result: dict, keys: Sequence[str], out: Path | None) -> None:
    """Print the ratios that matter; write the whole result as JSON when asked."""
    for key in keys:
        print(f"{key:>28}: {result[key]:.3f}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
