"""Paired statistics over seeds: what a variant changes relative to its baseline.

Two variants trained with the same seed share the seed's data order, augmentation and (for
students) fake chain, so the per-seed difference removes that shared noise; its mean and a
t-interval over seeds say whether the change is larger than what remains. Kept free of torch:
the report stage runs without it.
"""

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # two-sided level of every interval in the report


def signed(higher_is_better: bool) -> float:
    """+1 when a higher value is better (accuracy), -1 when lower is (MAE): multiplying a raw
    difference by it makes "positive = better" for every metric."""
    return 1.0 if higher_is_better else -1.0


def paired_difference(variant: Mapping[int, float], baseline: Mapping[int, float],
                      higher_is_better: bool = True,
                      confidence: float = CONFIDENCE) -> dict[str, float]:
    """Mean over seeds present in both of sign * (variant - baseline), with a t-interval.

    Returns ``n`` (paired seeds), ``mean``, ``std`` (of the differences, ddof=1) and ``low``,
    ``high`` (the two-sided interval, n-1 degrees of freedom). NaN where undefined: everything
    for no common seed, the std and interval for one.
    """
    seeds = sorted(set(variant) & set(baseline))
    diffs = signed(higher_is_better) * np.array([variant[s] - baseline[s] for s in seeds], float)
    n = len(diffs)
    out = {"n": n, "mean": math.nan, "std": math.nan, "low": math.nan, "high": math.nan}
    if n == 0:
        return out
    out["mean"] = float(diffs.mean())
    if n < 2:
        return out
    std = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    out.update(std=std, low=out["mean"] - half, high=out["mean"] + half)
    return out


def gap_closed(diff: float, teacher: float, nokd_mean: float, higher_is_better: bool = True
               ) -> float:
    """``diff`` (already signed, positive = better) as a share of the teacher-NOKD gap; NaN
    when the teacher is not better than NOKD (there is no gap to close)."""
    gap = signed(higher_is_better) * (teacher - nokd_mean)
    if not gap > 0 or math.isnan(diff):
        return math.nan
    return diff / gap


def format_interval(diff: Mapping[str, float], digits: int = 2) -> str:
    """'+1.23 [+0.40, +2.06]', '+1.23' for one seed, '' for none."""
    if diff["n"] == 0 or math.isnan(diff["mean"]):
        return ""
    text = f"{diff['mean']:+.{digits}f}"
    if not math.isnan(diff["low"]):
        text += f" [{diff['low']:+.{digits}f}, {diff['high']:+.{digits}f}]"
    return text
