"""Resumable loops: one key check, atomic checkpoints, logs rebuilt from them, clean stops.

Every training loop (teacher, students, metric net, DRE extractor, DR fit, GAN) checkpoints
through ``Resume``. A checkpoint holds its *resume key*: the hash of what decides the run's
trajectory, i.e. the loop's options and seed, the package code, and the *content* hash of every
input file (training and validation splits, each fake set, the KD teacher, the init model, the
generator). A rerun resumes only from a checkpoint with the same key; otherwise it says in one
line which part differs and starts over, so a changed input can never be half-trained on.

A checkpoint also holds the loop's log records, and a resume rewrites the whole log from them:
Snakemake deletes a job's outputs before rerunning it, and records written after the last
checkpoint are redone. ``Resume.due`` checkpoints every ``every`` steps, every ``seconds`` of
wall time (a run shorter than ``every`` still leaves checkpoints) and when SIGINT/SIGTERM asked
the loop to stop; ``Resume.stop_if_asked`` then ends the process with one line and status
128 + signal, and a rerun resumes there.

Everything loads with ``torch.load(weights_only=True)``: no pickled classes, so a checkpoint
from an untrusted source cannot run code, and files stay loadable across refactors.
"""

import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cgankd import distributed
from cgankd.errors import CgankdInputError
from cgankd.formats import RESUME_KEY
from cgankd.h5io import atomic_path
from cgankd.provenance import config_hash

HASH_CHUNK = 1 << 20  # bytes read per update of a file's content hash
KEY = RESUME_KEY  # the checkpoint field holding the key; "resume_parts" holds what it hashes
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` beside ``path`` and rename it into place: a kill keeps the old file."""
    with atomic_path(path) as tmp:
        torch.save(dict(payload), tmp)


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint, model or generator file, loaded without unpickling code; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CgankdInputError(f"{path}: file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, foreign pickle: an unusable file
        first = str(err).splitlines()[0] if str(err) else ""
        raise CgankdInputError(f"{path}: unreadable checkpoint ({type(err).__name__}: "
                               f"{first})") from None


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def write_jsonl(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> None:
    """A JSON-lines file holding exactly ``records``, replaced atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, streamed (16 hex chars).

    The stored ``config_hash`` attributes of cgankd files hash the config that made a file, not
    its content (a data root edited in place keeps it), so the bytes are hashed instead.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as err:
        raise CgankdInputError(f"{path}: cannot read input file ({err.strerror})") from None
    return digest.hexdigest()[:16]


def key_parts(config: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a resume key hashes: the config slice, and each named input file's content hash.

    ``inputs`` maps a role ("train", "fakes", "teacher") to a path, a list of paths or None.
    """
    files: dict[str, Any] = {}
    for role, value in inputs.items():
        if value is None:
            files[role] = None
        elif isinstance(value, (str, os.PathLike)):
            files[role] = file_digest(value)
        else:
            files[role] = [file_digest(p) for p in value]
    return {"config": config_hash(config), "inputs": files}


def _difference(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Names what differs between two ``key_parts``, for the one line a restart prints."""
    if not isinstance(old, Mapping):
        return "a checkpoint without input hashes"
    if old.get("config") != new["config"]:
        return "other options, seed or code"
    changed = [role for role in new["inputs"]
               if old.get("inputs", {}).get(role) != new["inputs"][role]]
    return f"other input files ({', '.join(changed) or 'their set'})"


class _Stop:
    """SIGINT/SIGTERM set a flag the loop reads at step boundaries; a second one interrupts."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum


class Resume:
    """The checkpoint of one loop: key check, save cadence, log rewrite, stop on signals.

    ``path`` is the checkpoint file; ``parts`` (from ``key_parts``) decide whether it may be
    resumed, together with ``match`` (values that must also be equal, e.g. the precision, each
    with its value in checkpoints that predate it). ``log_path`` is rewritten from the
    checkpoint's ``history`` on resume. ``seconds`` (None: none) is the wall-time cadence
    beside ``every`` steps. Only rank 0 writes; every rank reads.
    """

    def __init__(self, path: str | os.PathLike, parts: Mapping[str, Any], *, desc: str,
                 every: int, seconds: float | None, log_path: str | os.PathLike | None = None,
                 match: Mapping[str, tuple[Any, Any]] | None = None,
                 device: torch.device | str = "cpu"):
        self.path, self.parts, self.desc = Path(path), dict(parts), desc
        self.key = config_hash(self.parts)
        self.every = int(every)
        self.seconds = None if seconds is None else float(seconds)  # None: no time cadence
        self.log_path = None if log_path is None else Path(log_path)
        self.match = dict(match or {})
        self.world, self.device = distributed.current(), device
        self._stop = _Stop()
        self._last_save = time.monotonic()

    def load(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The checkpoint if it may be resumed, else None (after one line saying why).

        Every rank reads it; the barrier keeps rank 0 from replacing it before they have.
        """
        checkpoint, reason = None, None
        if self.path.is_file():
            try:
                checkpoint = load_checkpoint(self.path, map_location)
            except CgankdInputError as err:
                reason = f"unreadable ({err})"
            if checkpoint is not None and checkpoint.get(KEY) != self.key:
                reason = f"written for {_difference(checkpoint.get('resume_parts'), self.parts)}"
            for name, (value, old_default) in self.match.items():
                if checkpoint is not None and reason is None \
                        and checkpoint.get(name, old_default) != value:
                    reason = f"written for {name} {checkpoint.get(name, old_default)!r}"
            if reason is not None:
                checkpoint = None
                if self.world.main:
                    print(f"{self.desc}: {self.path}: checkpoint {reason}; training from "
                          f"scratch", file=sys.stderr, flush=True)
        if checkpoint is not None and self.world.main:
            self.write_log(checkpoint.get("history", []))
        self.world.barrier()
        return checkpoint

    def write_log(self, history: Sequence[Mapping[str, Any]]) -> None:
        """The JSON-lines log holding exactly ``history`` (atomic: never half a record)."""
        if self.log_path is not None and self.world.main:
            write_jsonl(self.log_path, history)

    def due(self, done: int, total: int) -> bool:
        """Whether to checkpoint after step ``done`` of ``total`` (the end has its own file).

        Every rank calls it after every step: under torchrun the ranks agree on a stop here.
        """
        if self.world.parallel:  # every rank stops at the same step, or the others hang
            asked = self.world.mean({"stop": float(self.stop_requested)}, self.device)["stop"]
            if asked > 0 and not self.stop_requested:
                self._stop.signum = int(signal.SIGTERM)
        if done >= total:
            return False
        return (done % self.every == 0 or self.stop_requested
                or (self.seconds is not None
                    and time.monotonic() - self._last_save >= self.seconds))

    @property
    def stop_requested(self) -> bool:
        return self._stop.signum is not None

    def save(self, payload: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> None:
        """Rank 0 writes ``payload`` with the key and the log ``history`` so far."""
        self._last_save = time.monotonic()
        if self.world.main:
            save_checkpoint(self.path, {**payload, **{k: v for k, (v, _) in self.match.items()},
                                        KEY: self.key, "resume_parts": self.parts,
                                        "history": list(history)})

    def stop_if_asked(self, done: int) -> None:
        """After a checkpoint at ``done``: end the process if a signal asked to stop."""
        if self._stop.signum is None:
            return
        name = signal.Signals(self._stop.signum).name
        print(f"{self.desc}: stopped by {name} after step {done}; checkpoint {self.path} "
              f"written, rerun to resume", file=sys.stderr, flush=True)
        raise SystemExit(128 + self._stop.signum)

    def finish(self) -> None:
        """The finished output supersedes the checkpoint."""
        if self.world.main:
            self.path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def catching_signals(self) -> Iterator["Resume"]:
        """SIGINT/SIGTERM stop the loop at its next step boundary instead of killing it.

        Handlers can only be installed from the main thread; elsewhere signals act as before.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._stop) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def rng_state(generators: Sequence[torch.Generator], device: torch.device | str) -> dict:
    """The states of ``generators`` and of torch's global ones (dropout draws from those)."""
    state = {"generators": [g.get_state() for g in generators], "torch": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: Mapping[str, Any], generators: Sequence[torch.Generator],
                device: torch.device | str) -> None:
    for generator, saved in zip(generators, state["generators"]):
        generator.set_state(saved)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
