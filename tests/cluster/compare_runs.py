"""Compare two finished cgankd runs of the same config file by file: every HDF5 dataset and
attribute, every checkpoint tensor, every JSON value and every table cell must be equal.

Usage: python tests/cluster/compare_runs.py RUN_DIR_A RUN_DIR_B   (each holds results/<experiment>)
Exits 1 naming each file and value that differs, or a file that only one run has.

Left out, because they differ between two runs of the same inputs by design: wall-clock
timings (keys named in VOLATILE_KEYS, the benchmarks/ folder, table.md's wall-time table),
job logs, and PNG figures (their bytes embed library metadata; their data are in the files
compared here).
"""

import json
import math
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

# Keys whose values are clocks or depend on the working tree when the job ran
# (cgankd/provenance.py volatile_provenance, and the per-step "seconds" of training logs).
VOLATILE_KEYS = {"seconds", "created_utc", "git_sha"}
SKIPPED_DIRS = {"logs", "benchmarks"}
SKIPPED_SUFFIXES = {".png", ".log", ".html"}
TIMING_TABLE = "| stage | jobs |"  # table.md: the wall-time table starts with this header


def results_files(run: Path) -> dict[str, Path]:
    root = run / "results"
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix not in SKIPPED_SUFFIXES
            and not SKIPPED_DIRS & set(p.relative_to(root).parts)}


def diff_values(a, b, where: str) -> list[str]:
    """Differences between two nested values (dicts, lists, tensors, arrays, scalars)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(map(str, set(a) ^ set(b)))} in one run only"]
        return [d for k in a if k not in VOLATILE_KEYS
                for d in diff_values(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff_values(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        a, b = a.numpy(), b.numpy()
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return [f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"]
        equal = (np.array_equal(a, b, equal_nan=True) if a.dtype.kind in "fc"
                 else np.array_equal(a, b))
        if not equal:
            worst = (float(np.max(np.abs(a.astype(float) - b.astype(float))))
                     if a.dtype.kind in "fiub" else "n/a")
            return [f"{where}: arrays differ (max abs difference {worst})"]
        return []
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    if isinstance(a, str) and isinstance(b, str) and a != b:  # text: its first differing line
        la, lb = a.splitlines() + ["<end>"], b.splitlines() + ["<end>"]
        at = next(i for i, (x, y) in enumerate(zip(la, lb)) if x != y)
        return [f"{where}: line {at + 1}: {la[at]!r} vs {lb[at]!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def read_h5(path: Path) -> dict:
    out: dict = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            out[name + "@attrs"] = {k: obj.attrs[k] for k in obj.attrs}
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        out["@attrs"] = {k: f.attrs[k] for k in f.attrs}
        f.visititems(visit)
    # Attribute values are JSON text in cgankd files: parse them so volatile keys can be skipped.
    for key, attrs in out.items():
        if key.endswith("@attrs"):
            out[key] = {k: _maybe_json(v) for k, v in attrs.items()}
    return out


def _maybe_json(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read(path: Path):
    if path.suffix == ".h5":
        return read_h5(path)
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    text = path.read_text()
    if path.suffix == ".md":
        return text.split(TIMING_TABLE)[0]
    return text


def compare(run_a: Path, run_b: Path) -> tuple[list[str], int]:
    """(every difference, one line each; how many files run A has)."""
    files_a, files_b = results_files(run_a), results_files(run_b)
    problems = [f"{name}: only in {run_a if name in files_a else run_b}"
                for name in sorted(set(files_a) ^ set(files_b))]
    for name in sorted(set(files_a) & set(files_b)):
        problems += diff_values(read(files_a[name]), read(files_b[name]), name)
    return problems, len(files_a)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    problems, n_files = compare(Path(argv[0]), Path(argv[1]))
    for line in problems:
        print(f"DIFFERS {line}")
    if problems:
        return 1
    if n_files == 0:
        print(f"no results under {argv[0]}/results", file=sys.stderr)
        return 1
    print(f"equal: {n_files} result files of {argv[0]} and {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
