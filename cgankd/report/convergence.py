"""The convergence check: would a longer budget have changed the baselines?

The teacher and NOKD of every student net are retrained with ``factor`` times their budget
(``train_convergence``). A table of under-trained nets measures the budget, not the method, so
the check flags it: a student net when its longer run is better seed by seed with a 95 %
interval above zero; the single teacher when its longer run is better by more than the NOKD
seeds' spread (one run has no interval of its own). Kept free of torch.
"""

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cgankd.report.paired import format_interval, paired_difference, signed
from cgankd.report.table import higher_is_better, results_frame

FLAG = "NOT CONVERGED"


def _spread(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan


def _verdict(better: bool | None) -> str:
    return "undetermined" if better is None else (FLAG if better else "converged")


def convergence_check(base_files: Sequence[str | Path], long_files: Sequence[str | Path],
                      factor: float) -> dict[str, Any]:
    """Compare the 1x runs (``base_files``: teacher and NOKD test metrics) with the
    ``factor``-x runs (``long_files``); ``gain`` is positive when the longer run is better."""
    base, long = results_frame(base_files), results_frame(long_files)
    metric = str(base["metric"].iloc[0])
    better = higher_is_better(metric)
    out: dict[str, Any] = {"factor": factor, "metric": metric, "higher_is_better": better,
                           "confidence": 0.95, "students": {}, "teacher": None}
    for name, rows in base[base["role"] != "teacher"].groupby("student", sort=False):
        longer = long[(long["role"] != "teacher") & (long["student"] == name)]
        diff = paired_difference(dict(zip(longer["seed"], longer["value"])),
                                 dict(zip(rows["seed"], rows["value"])), better)
        mean_1x, std_1x = _spread(rows["value"])
        mean_2x, std_2x = _spread(longer["value"]) if len(longer) else (math.nan, math.nan)
        flagged = None if math.isnan(diff["low"]) else bool(diff["low"] > 0)
        out["students"][name] = {"base_mean": mean_1x, "base_std": std_1x, "long_mean": mean_2x,
                                 "long_std": std_2x, "gain": diff["mean"], "ci_low": diff["low"],
                                 "ci_high": diff["high"], "n_paired": diff["n"],
                                 "verdict": _verdict(flagged)}
    teacher_1x = base.loc[base["role"] == "teacher", "value"]
    teacher_2x = long.loc[long["role"] == "teacher", "value"]
    if len(teacher_1x) and len(teacher_2x):
        gain = signed(better) * float(teacher_2x.mean() - teacher_1x.mean())
        # The strictest noise yardstick when several student nets give one: the smallest.
        stds = [s["base_std"] for s in out["students"].values() if not math.isnan(s["base_std"])]
        noise = min(stds) if stds else math.nan
        out["teacher"] = {"base": float(teacher_1x.mean()), "long": float(teacher_2x.mean()),
                          "gain": gain, "noise_std": noise,
                          "verdict": _verdict(None if math.isnan(noise) else gain > noise)}
    out["flagged"] = [name for name, s in out["students"].items() if s["verdict"] == FLAG]
    if out["teacher"] and out["teacher"]["verdict"] == FLAG:
        out["flagged"].insert(0, "teacher")
    return out


def flag_markdown(check: Mapping[str, Any]) -> str:
    """The warning at the top of table.md, or '' when nothing is flagged."""
    if not check["flagged"]:
        return ""
    factor = check["factor"]
    parts = []
    for name in check["flagged"]:
        if name == "teacher":
            t = check["teacher"]
            parts.append(f"teacher {t['gain']:+.2f} (more than the NOKD seed std "
                         f"{t['noise_std']:.2f})")
        else:
            s = check["students"][name]
            parts.append(f"NOKD of {name} {format_interval(_as_diff(s))} (95 % CI above 0)")
    return (f"**{FLAG}**: {factor:g}x the training budget improves "
            f"{'; '.join(parts)}. This table measures the budget, not the method: raise the "
            f"recipe's budget (see the convergence section below).\n")


def _as_diff(s: Mapping[str, Any]) -> dict[str, float]:
    return {"n": s["n_paired"], "mean": s["gain"], "low": s["ci_low"], "high": s["ci_high"]}


def _ms(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")


def convergence_markdown(check: Mapping[str, Any]) -> str:
    """The table.md section: each baseline at 1x and at factor x, the paired gain, a verdict."""
    f = f"{check['factor']:g}x"
    lines = [f"Convergence check: the baselines retrained with {f} the budget (Δ: {f} minus 1x, "
             f"positive = better; NOT CONVERGED when a student's paired 95 % CI is above 0, or "
             f"when the teacher gains more than the NOKD seed std).", "",
             f"| model | 1x | {f} | Δ [95 % CI] | seeds | verdict |", "|---|---|---|---|---|---|"]
    t = check["teacher"]
    if t:
        noise = "n/a" if math.isnan(t["noise_std"]) else f"{t['noise_std']:.2f}"
        lines.append(f"| teacher | {t['base']:.2f} | {t['long']:.2f} | {t['gain']:+.2f} "
                     f"(noise: {noise}) | 1 | {t['verdict']} |")
    for name, s in check["students"].items():
        lines.append(f"| NOKD {name} | {_ms(s['base_mean'], s['base_std'])} | "
                     f"{_ms(s['long_mean'], s['long_std'])} | {format_interval(_as_diff(s))} | "
                     f"{s['n_paired']} | {s['verdict']} |")
    return "\n".join(lines) + "\n"

