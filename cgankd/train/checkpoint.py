"""Checkpoint files: plain dicts of tensors and JSON-able values, written atomically.

Everything loads with ``torch.load(weights_only=True)``: no pickled classes, so a checkpoint
from an untrusted source cannot run code, and files stay loadable across refactors.
"""

from pathlib import Path
from typing import Any

import torch

from cgankd.errors import CgankdInputError
from cgankd.h5io import atomic_path


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CgankdInputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle: one line, not a traceback
        raise CgankdInputError(f"{path}: unreadable checkpoint "
                               f"({type(err).__name__}: {str(err).splitlines()[0]})") from None


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
