"""GAN training checkpoints: plain dicts of tensors and JSON-able values, written atomically.

Every file here loads with ``torch.load(weights_only=True)``: state dicts, RNG states as byte
tensors, options as plain dicts. A kill during a save leaves the previous checkpoint intact
(the new one is written beside it and renamed into place).
"""

import json
import os
from pathlib import Path
from typing import Any

import torch

from cgankd.errors import CgankdInputError
from cgankd.h5io import atomic_path


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint or generator file safely (no pickled code), naming the file on failure."""
    path = Path(path)
    if not path.exists():
        raise CgankdInputError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CgankdInputError(f"{path}: not a readable cgankd checkpoint: "
                               f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                               ) from None


def truncate_log(path: Path, last_iteration: int) -> None:
    """Keep the JSON-lines log's records up to ``last_iteration`` (those a resume will not redo)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["iteration"] <= last_iteration:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            break  # a line cut by the kill: everything after it is redone
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))
