"""A study's numbers: per point, the paired gain of cGAN-KD over its real-data baseline.

Each point's student test metrics (``students/<net>/<fakes>/<method>/seed<k>/test_metrics.json``)
are read for the variants its config trains; the gain of cGAN-KD over NOKD, and of
cGAN-KD + X over X for every KD method X trained both ways, is the paired mean difference over
seeds with its 95 % t-interval (positive = better; MAE differences are baseline minus variant)
and its share of the teacher-NOKD gap (both as ``cgankd.report.paired`` computes them for
the results table). The same paired gain on the validation split (its score, and its loss,
which 100 validation images resolve more finely than accuracy) is what a level is chosen on:
never the test gain.
"""

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cgankd.h5io import atomic_path
from cgankd.report.paired import gap_closed, paired_difference
from cgankd.study.plan import Point

REAL = "real"  # rules/common.smk: the student's training set without fakes
NO_KD = "none"
COLUMNS = ("study", "factor", "key", "level", "experiment", "net", "metric", "comparison",
           "variant", "baseline", "n", "gain", "std", "ci_low", "ci_high", "variant_mean",
           "baseline_mean", "teacher", "gap_closed_pct", "val_gain", "val_ci_low", "val_ci_high",
           "val_loss_gain", "val_loss_ci_low", "val_loss_ci_high")


def _label(fakes: str, method: str) -> str:
    """rules/common.smk's variant_label for the final rung: the table's row names."""
    if fakes == REAL:
        return "NOKD" if method == NO_KD else method.upper()
    return "cGAN-KD" if method == NO_KD else f"cGAN-KD + {method.upper()}"


def comparisons(config: Mapping[str, Any]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """((fakes, method) of the variant, (fakes, method) of its baseline) the point trains."""
    fake, methods = config.get("fake", {}), config.get("students", {}).get("methods", [])
    if not fake.get("enabled", True):
        return []
    final = fake.get("final", "filtered")
    pairs = [((final, NO_KD), (REAL, NO_KD))] if NO_KD in methods else []
    return pairs + [((final, m), (REAL, m)) for m in fake.get("kd_methods", []) if m in methods]


def _read(path: Path, split: str = "test") -> tuple[str, float] | None:
    """(metric name, value) on the test split, or on validation: "val" (its score, higher is
    better) or "val_loss"."""
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    key = "accuracy" if "accuracy" in metrics else "mae"
    if split == "test":
        return key, float(metrics[key])
    val = metrics.get("val") or {}
    name = "score" if split == "val" else "loss"
    return (split, float(val[name])) if name in val else None


def _by_seed(results: Path, net: str, variant: tuple[str, str],
             seeds: Sequence[int], split: str = "test") -> tuple[str | None, dict[int, float]]:
    metric, values = None, {}
    for seed in seeds:
        got = _read(results / "students" / net / variant[0] / variant[1] / f"seed{seed}"
                    / "test_metrics.json", split)
        if got is not None:
            metric, values[int(seed)] = got[0], got[1]
    return metric, values


def _val_gains(results: Path, net: str, variant: tuple[str, str], baseline: tuple[str, str],
               seeds: Sequence[int]) -> dict[str, float]:
    """The paired gain on the validation split: its score (higher is better for accuracy and
    for the negated MAE alike) and its loss (lower is better)."""
    out = {}
    for split, prefix, higher in (("val", "val", True), ("val_loss", "val_loss", False)):
        diff = paired_difference(_by_seed(results, net, variant, seeds, split)[1],
                                 _by_seed(results, net, baseline, seeds, split)[1],
                                 higher_is_better=higher)
        out.update({f"{prefix}_gain": diff["mean"], f"{prefix}_ci_low": diff["low"],
                    f"{prefix}_ci_high": diff["high"]})
    return out


def _mean(values: Mapping[int, float]) -> float:
    return sum(values.values()) / len(values) if values else math.nan


def point_rows(study: str, point: Point, results: Path) -> list[dict[str, Any]]:
    """One row per student net and comparison; NaN where a point has not finished."""
    config = point.config
    seeds = config.get("students", {}).get("seeds", [])
    teacher = _read(results / "teacher" / "test_metrics.json")
    rows = []
    for net in config.get("students", {}).get("nets", {}):
        metric_nokd, nokd = _by_seed(results, net, (REAL, NO_KD), seeds)
        for variant, baseline in comparisons(config):
            metric_v, v = _by_seed(results, net, variant, seeds)
            metric_b, b = _by_seed(results, net, baseline, seeds)
            metric = metric_v or metric_b or (teacher[0] if teacher else "")
            higher = metric != "mae"
            diff = paired_difference(v, b, higher_is_better=higher)
            teacher_value = teacher[1] if teacher else math.nan
            closed = gap_closed(diff["mean"], teacher_value, _mean(nokd), higher) \
                if nokd and teacher else math.nan
            rows.append({
                "study": study, "factor": point.factor, "key": point.key, "level": point.level,
                "experiment": results.name, "net": net, "metric": metric,
                "comparison": f"{_label(*variant)} vs {_label(*baseline)}",
                "variant": _label(*variant), "baseline": _label(*baseline), "n": diff["n"],
                "gain": diff["mean"], "std": diff["std"], "ci_low": diff["low"],
                "ci_high": diff["high"], "variant_mean": _mean(v), "baseline_mean": _mean(b),
                "teacher": teacher_value, "gap_closed_pct": 100 * closed,
                **_val_gains(results, net, variant, baseline, seeds)})
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row[k]) for k in COLUMNS})


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value
