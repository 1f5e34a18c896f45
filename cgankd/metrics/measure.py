"""One sample set measured against the real test set, in the metric net's feature space.

The same measurement serves a fake set, its reference (the real validation split in the fake
set's place: what real data scores against real data), and fake subsets the size of that
reference. Everything here works on embedded arrays; the files are read in ``quality.py``.

Per group (a class, or an equal-width window of the regression label range) it reports the
sample counts, FID and precision / recall / density / coverage; a group with too few samples
on either side gets null for the metrics it cannot support, and is left out of the means.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgankd.metrics.fid import feature_stats, frechet_distance
from cgankd.metrics.manifold import manifold_min_count, manifold_scores

MANIFOLD_KEYS = ("precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class Embedded:
    """A set as the metric net sees it: pooled features, head outputs, labels, group ids."""

    feats: np.ndarray  # (N, D) float32
    outs: np.ndarray  # (N, K) float32 head outputs
    labels: np.ndarray  # (N,) int64 class ids or float64 labels in original units
    groups: np.ndarray  # (N,) int64 class id or label window of each sample

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> "Embedded":
        return Embedded(self.feats[rows], self.outs[rows], self.labels[rows], self.groups[rows])


@dataclass(frozen=True)
class Grouping:
    """How a task groups its samples and checks their labels, and the JSON keys it reports."""

    task: str  # classification | regression
    describe: list[dict[str, Any]]  # per group: {"class", "name"} or {"low", "high"}
    # regression: metric-net outputs -> predicted labels in original units
    predicted: Callable[[np.ndarray], np.ndarray] | None = None
    keys: dict[str, str] = field(default_factory=dict)  # rows / mean / count / label

    @property
    def n_groups(self) -> int:
        return len(self.describe)

    @property
    def scalars(self) -> tuple[str, ...]:
        """The single-number results a subset-size-matched comparison averages."""
        return ("fid", self.keys["mean"], *MANIFOLD_KEYS, self.keys["label"])


def classification_grouping(names: Sequence[str]) -> Grouping:
    return Grouping("classification", [{"class": k, "name": n} for k, n in enumerate(names)],
                    keys={"rows": "per_class", "mean": "intra_fid",
                          "count": "intra_fid_classes", "label": "label_agreement"})


def regression_grouping(edges: np.ndarray,
                        predicted: Callable[[np.ndarray], np.ndarray]) -> Grouping:
    windows = [{"low": float(lo), "high": float(hi)} for lo, hi in zip(edges, edges[1:])]
    return Grouping("regression", windows, predicted,
                    keys={"rows": "windows", "mean": "window_fid_mean",
                          "count": "window_fid_windows", "label": "label_score"})


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _shuffled(labels: np.ndarray) -> np.ndarray:
    """The labels in a fixed random order (seeded: the report is deterministic)."""
    return labels[np.random.default_rng(0).permutation(len(labels))]


def label_stats(fake: Embedded, grouping: Grouping) -> dict[str, float]:
    """Do the images look like their labels to the metric net? With a shuffled-label chance
    reference beside each value."""
    if grouping.task == "classification":
        pred = fake.outs.argmax(1)
        return {"label_agreement": float(100.0 * np.mean(pred == fake.labels)),
                "label_agreement_shuffled": float(100.0 * np.mean(
                    pred == _shuffled(fake.labels)))}
    pred = grouping.predicted(fake.outs.astype(np.float64))
    err = np.abs(pred - fake.labels)
    return {"label_score": float(err.mean()), "label_score_std": float(err.std()),
            # the same images scored against shuffled labels: a generator ignoring its label
            "label_score_shuffled": float(np.abs(pred - _shuffled(fake.labels)).mean())}


def _manifold_or_none(real: np.ndarray, fake: np.ndarray, opts: Mapping[str, Any]) -> dict:
    if min(len(real), len(fake)) < manifold_min_count(opts["pr_k"], opts["dc_k"]):
        return dict.fromkeys(MANIFOLD_KEYS)
    return manifold_scores(real, fake, pr_k=opts["pr_k"], dc_k=opts["dc_k"])


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def measure_pair(real: Embedded, fake: Embedded, grouping: Grouping,
                 opts: Mapping[str, Any]) -> dict[str, Any]:
    """FID, precision / recall / density / coverage, overall and per group, and label stats
    of ``fake`` against ``real``. ``opts``: min_per_class, pr_k, dc_k (quality.py defaults)."""
    rows = []
    for g, described in enumerate(grouping.describe):
        r, f = real.feats[real.groups == g], fake.feats[fake.groups == g]
        enough = min(len(r), len(f)) >= opts["min_per_class"]
        rows.append({**described, "n_real": len(r), "n_fake": len(f),
                     "fid": fid(r, f) if enough else None, **_manifold_or_none(r, f, opts)})
    keys = grouping.keys
    return {
        "n_fake": len(fake),
        "fid": fid(real.feats, fake.feats) if min(len(real), len(fake)) >= 2 else None,
        **_manifold_or_none(real.feats, fake.feats, opts),
        keys["mean"]: _mean([row["fid"] for row in rows]),
        keys["count"]: sum(row["fid"] is not None for row in rows),
        # the per-group analogue of Intra-FID for the four manifold scores
        "group_mean": {m: _mean([row[m] for row in rows]) for m in MANIFOLD_KEYS},
        keys["rows"]: rows,
        **label_stats(fake, grouping),
    }


def matched_subsets(fake: Embedded, sizes: np.ndarray, draws: int, seed: int) -> list[np.ndarray]:
    """``draws`` row sets of ``fake``, each with min(sizes[g], fakes in g) rows of every group
    g, drawn without replacement (one draw when that takes every fake: all draws would agree)."""
    members = [np.flatnonzero(fake.groups == g) for g in range(len(sizes))]
    if all(len(m) <= s for m, s in zip(members, sizes)):
        draws = 1
    rng = np.random.default_rng(seed)
    return [np.sort(np.concatenate([rng.choice(m, min(len(m), int(s)), replace=False)
                                    for m, s in zip(members, sizes)]).astype(np.int64))
            for _ in range(draws)]


def measure_matched(real: Embedded, fake: Embedded, reference: Embedded, grouping: Grouping,
                    opts: Mapping[str, Any]) -> dict[str, Any]:
    """Mean and std over fake subsets with the reference's per-group counts: FID's bias, recall
    and coverage all move with the sample count, so only equal counts compare with the
    reference's values. ``opts``: also matched_draws, matched_seed."""
    sizes = np.bincount(reference.groups, minlength=grouping.n_groups)
    subsets = matched_subsets(fake, sizes, opts["matched_draws"], opts["matched_seed"])
    results = [measure_pair(real, fake.subset(rows), grouping, opts) for rows in subsets]
    out: dict[str, Any] = {"n_fake": len(subsets[0]), "draws": len(subsets), "std": {}}
    for key in grouping.scalars:
        values = [r[key] for r in results if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
        out["std"][key] = float(np.std(values)) if values else None
    return out
