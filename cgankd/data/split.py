"""Carving validation/test parts and label-scarce training subsets, reproducibly.

Classification splits are stratified (each class keeps its share); regression splits are
uniform over samples. Every draw comes from one seeded generator, so the same config gives the
same ids in every run.
"""

import numpy as np

from cgankd.data.registry import Part
from cgankd.errors import CgankdInputError


def stratified_take(labels: np.ndarray, per_class: int | None, fraction: float | None,
                    rng: np.random.Generator, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (taken, rest): ``per_class`` rows of every class, or ``fraction`` of each."""
    taken = []
    for k in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == k))
        n = per_class if per_class is not None else int(round(fraction * len(rows)))
        if n > len(rows):
            raise CgankdInputError(f"{where}: class {k} has {len(rows)} images, fewer than the "
                                   f"{n} requested")
        taken.append(rows[:n])
    taken = np.sort(np.concatenate(taken)) if taken else np.empty(0, np.int64)
    rest = np.setdiff1d(np.arange(len(labels)), taken)
    return taken, rest


def uniform_take(n_total: int, fraction: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n_total)
    n = int(round(fraction * n_total))
    return np.sort(perm[:n]), np.sort(perm[n:])


def carve(part: Part, task: str, *, per_class: int | None, fraction: float | None,
          rng: np.random.Generator, where: str) -> tuple[Part, Part]:
    """Split ``part`` into (carved, rest)."""
    if task == "classification":
        taken, rest = stratified_take(part.labels, per_class, fraction, rng, where)
    else:
        if fraction is None:
            raise CgankdInputError(f"{where}: regression sets are carved by a fraction, "
                                   f"not per class")
        taken, rest = uniform_take(len(part), fraction, rng)
    return part.take(taken), part.take(rest)
