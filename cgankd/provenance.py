"""Hashes and provenance records.

Stable provenance (config hash, source hash, seed) goes into outputs' root attributes and into
Snakemake ``params`` so that a change reruns exactly the stages it affects. Volatile provenance
(time, git sha, host, library versions) goes into a separate ``/provenance`` group of each output
and never into params: it changes on every run and must not trigger reruns.
"""

import datetime
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj: Any) -> str:
    """Short content hash of a config slice (16 hex chars of sha256)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def git_sha() -> str:
    """The repository's HEAD commit (with '-dirty' when the tree has changes), or 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True,
            timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def volatile_provenance() -> dict[str, str]:
    """What differs between two runs of the same inputs: kept out of hashes and params."""
    import h5py
    import numpy
    import torch

    from cgankd import __version__

    info = {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "host": platform.node(),
        # kernels (and so the numbers) differ between CPU types: the table names where it ran
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cgankd": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
    }
    # plain str: torch.__version__ is a str subclass that weights_only loading rejects
    return {key: str(value) for key, value in info.items()}
