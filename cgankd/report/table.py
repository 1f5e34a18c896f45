"""The ``aggregate`` stage: every evaluated model of an experiment in one table.

Rows are variants (teacher; each student net x method x fake set), values mean +/- std over
seeds (the sample std, ddof=1; a single seed shows no std). Every student variant is compared
seed by seed with its baseline (``paired``): real-only KD methods, cGAN-KD and every ablation
rung with NOKD of the same student net, "cGAN-KD + X" with the real-only X. Written as CSV (one
row per variant, numeric columns and every seed's value) and as Markdown, headed by the
training protocol the numbers depend on.
"""

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cgankd.h5io import atomic_path
from cgankd.report.paired import format_interval, gap_closed, paired_difference
from cgankd.report.quality_table import quality_markdown

REAL = "real"  # the fakes folder of real-only students (rules/common.smk REAL)
NO_KD = "none"  # the KD method of the no-KD baseline
PROTOCOL = ("budget", "steps", "epochs", "selection")  # evaluate copies these from the model
PLATFORM = ("machine", "processor", "torch")  # where the model was trained (provenance)


def _variant(result: dict[str, Any]) -> str:
    identity = result.get("identity") or {}
    return identity.get("variant") or ("teacher" if result["role"] == "teacher"
                                       else result["kd_method"])


def _metric(result: dict[str, Any]) -> tuple[str, float]:
    return ("accuracy", result["accuracy"]) if result["task"] == "classification" \
        else ("mae", result["mae"])


def higher_is_better(metric: str) -> bool:
    return metric == "accuracy"


def result_row(result: dict[str, Any]) -> dict[str, Any]:
    """One evaluated model as a table row; fields missing from older files read as None."""
    name, value = _metric(result)
    identity = result.get("identity") or {}
    student = result["role"] != "teacher"
    return {"role": result["role"], "student": identity.get("student", ""), "net": result["net"],
            "variant": _variant(result), "fakes": identity.get("fakes", REAL) if student else "",
            "kd_method": result.get("kd_method", NO_KD), "seed": int(result["seed"]),
            "metric": name, "value": float(value),
            **{k: result.get(k) for k in PROTOCOL},
            **{k: (result.get("trained_on") or {}).get(k) for k in PLATFORM}}


def results_frame(metric_files: Sequence[str | Path]) -> pd.DataFrame:
    return pd.DataFrame([result_row(json.loads(Path(p).read_text())) for p in metric_files])


def baseline_of(fakes: str, kd_method: str) -> tuple[str, str] | None:
    """(fakes, method) of the row a student variant is compared with; None for NOKD itself.

    Real-only rows compare with NOKD; rows with fakes (cGAN-KD, ablation rungs, fakes-only)
    with the real-only row of the same KD method, so "cGAN-KD + KD" is measured against KD.
    """
    if fakes == REAL:
        return None if kd_method == NO_KD else (REAL, NO_KD)
    return (REAL, kd_method)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (role, student, net, variant): mean, std, n, every seed's value, and the
    paired comparison with its baseline (``delta``, ``delta_low``/``delta_high`` the 95 %
    interval, ``n_paired``, ``gap_closed_pct``)."""
    keys = ["role", "student", "net", "variant", "fakes", "kd_method", "metric"]
    order = {k: i for i, k in enumerate(dict.fromkeys(frame["variant"]))}  # first-seen order
    better = higher_is_better(frame["metric"].iloc[0])
    teacher = frame.loc[frame["role"] == "teacher", "value"]
    teacher_mean = float(teacher.mean()) if len(teacher) else math.nan
    by_seed = {key: dict(zip(g["seed"], g["value"]))
               for key, g in frame.groupby(["student", "fakes", "kd_method"], sort=False)}
    labels = dict(zip(zip(frame["student"], frame["fakes"], frame["kd_method"]),
                      frame["variant"]))
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        values = group.sort_values("seed")["value"].to_numpy(float)
        row = dict(zip(keys, key))
        row.update(mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else np.nan,
                   n_seeds=len(values), seeds=" ".join(f"{v:.2f}" for v in values),
                   baseline="", delta=np.nan, delta_low=np.nan, delta_high=np.nan, n_paired=0,
                   gap_closed_pct=np.nan)
        base = baseline_of(row["fakes"], row["kd_method"]) if row["role"] != "teacher" else None
        if base is not None:
            base_key = (row["student"], *base)
            diff = paired_difference(by_seed[(row["student"], row["fakes"], row["kd_method"])],
                                     by_seed.get(base_key, {}), better)
            nokd = by_seed.get((row["student"], REAL, NO_KD), {})
            nokd_mean = float(np.mean(list(nokd.values()))) if nokd else math.nan
            row.update(baseline=labels.get(base_key, f"{base[1]} (not trained)"),
                       delta=diff["mean"], delta_low=diff["low"], delta_high=diff["high"],
                       n_paired=diff["n"],
                       gap_closed_pct=100 * gap_closed(diff["mean"], teacher_mean, nokd_mean,
                                                       better))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["_order"] = out["variant"].map(order)
    out["_teacher"] = out["role"] != "teacher"
    return out.sort_values(["_teacher", "student", "_order"]).drop(columns=["_order", "_teacher"])


def _cell(value: float, fmt: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, fmt)


def markdown(summary: pd.DataFrame) -> str:
    metric = summary["metric"].iloc[0]
    header = "accuracy (%)" if metric == "accuracy" else "MAE"
    lines = [f"| student | variant | {header} mean ± std | baseline | "
             f"paired Δ vs baseline [95 % CI] | gap closed (%) | seeds |",
             "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        spread = "" if np.isnan(r["std"]) else f" ± {r['std']:.2f}"
        delta = format_interval({"n": r["n_paired"], "mean": r["delta"], "low": r["delta_low"],
                                 "high": r["delta_high"]})
        seeds = str(r["n_seeds"])
        if r["baseline"] and r["n_paired"] != r["n_seeds"]:
            seeds += f" ({r['n_paired']} paired)"
        lines.append(f"| {r['student']} | {r['variant']} | {r['mean']:.2f}{spread} | "
                     f"{r['baseline']} | {delta} | {_cell(r['gap_closed_pct'], '.0f')} | "
                     f"{seeds} |")
    return "\n".join(lines) + "\n"


def _values(frame: pd.DataFrame, key: str) -> str:
    """The distinct recorded values of a column, in order; NaN-padded ints print as ints."""
    found = [v for v in dict.fromkeys(frame[key]) if v is not None and v == v]
    found = [int(v) if isinstance(v, float) and v.is_integer() else v for v in found]
    return ", ".join(str(v) for v in dict.fromkeys(found)) if found else "not recorded"


def protocol_markdown(frame: pd.DataFrame) -> str:
    """The settings the numbers depend on: each role's budget protocol and checkpoint
    selection, and the machine and torch version the models were trained with."""
    lines = []
    for role, name in (("teacher", "teacher"), ("student", "students")):
        rows = frame[frame["role"] == role]
        if not len(rows):
            continue
        budget = _values(rows, "budget")
        if budget == "not recorded":  # model files from before the protocol was recorded
            lines.append(f"- {name}: budget and selection not recorded")
            continue
        if budget == "epochs":
            steps = sorted(int(s) for s in rows["steps"].dropna())
            span = f"{steps[0]}-{steps[-1]}" if steps and steps[0] != steps[-1] else \
                (str(steps[0]) if steps else "?")
            amount = f"{_values(rows, 'epochs')} epochs over each variant's own set ({span} steps)"
        else:
            amount = f"{_values(rows, 'steps')} steps per run"
        lines.append(f"- {name}: budget {budget} ({amount}); selection "
                     f"{_values(rows, 'selection')}")
    where = ", ".join(dict.fromkeys(  # processor() is empty on many Linux hosts
        f"{r.machine or '?'}{f' / {r.processor}' if r.processor else ''}, torch {r.torch or '?'}"
        for r in frame.itertuples() if r.machine or r.torch)) or "not recorded"
    lines.append(f"- trained on: {where}. Reproducible on one machine only: CPU (and GPU) "
                 f"kernels differ between machines, so another machine gives other numbers for "
                 f"the same config")
    lines.append("- Δ: the variant minus its baseline, paired by seed (positive = better; for MAE "
                 "baseline minus variant); gap closed: Δ as a share of teacher minus NOKD")
    return "\n".join(lines) + "\n"


def stage_times(benchmark_files: Sequence[str | Path]) -> pd.DataFrame:
    """Wall time per stage from Snakemake's benchmark files (``.../benchmarks/<stage>[/...]``),
    the jobs of a stage summed."""
    rows = []
    for path in benchmark_files:
        parts = Path(path).parts
        rel = Path(*parts[len(parts) - parts[::-1].index("benchmarks"):])
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        rows.append({"stage": rel.parts[0].removesuffix(".tsv"), "seconds": seconds})
    if not rows:
        return pd.DataFrame(columns=["stage", "jobs", "seconds"])
    frame = pd.DataFrame(rows)
    return (frame.groupby("stage", sort=False)["seconds"].agg(["count", "sum"])
            .rename(columns={"count": "jobs", "sum": "seconds"}).reset_index())


def times_markdown(times: pd.DataFrame) -> str:
    lines = ["| stage | jobs | wall time (s, summed over jobs) |", "|---|---|---|"]
    lines += [f"| {r.stage} | {r.jobs} | {r.seconds:.1f} |" for r in times.itertuples()]
    lines.append(f"| **all** | {int(times['jobs'].sum())} | {times['seconds'].sum():.1f} |")
    return "\n".join(lines) + "\n"


def aggregate(metric_files: Sequence[str | Path], out_csv: str | Path, out_md: str | Path,
              benchmark_files: Sequence[str | Path] = (),
              quality: dict[str, dict] | None = None, *, flag: str = "",
              sections: Sequence[str] = ()) -> pd.DataFrame:
    """Write the table (CSV, Markdown). The Markdown starts with ``flag`` (a warning such as the
    convergence check's) and the protocol, and adds ``sections``, fake-set quality and stage
    times after the table."""
    frame = results_frame(metric_files)
    summary = summarise(frame)
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.4f")
    text = (flag + "\n" if flag else "") + protocol_markdown(frame) + "\n" + markdown(summary)
    for section in sections:
        text += "\n" + section
    if quality:
        text += "\n" + quality_markdown(quality)
    if benchmark_files:
        text += "\n" + times_markdown(stage_times(benchmark_files))
    with atomic_path(out_md) as tmp:
        tmp.write_text(text)
    return summary

