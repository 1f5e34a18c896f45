"""The ``aggregate`` stage: every evaluated model of an experiment in one table.

Rows are variants (teacher; each student net x method), values mean +/- std over seeds (the
sample std, ddof=1; a single seed shows no std). Written as CSV (one row per variant, one
column per seed too) and as Markdown for the README and the report.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cgankd.h5io import atomic_path


def _variant(result: dict[str, Any]) -> str:
    identity = result.get("identity") or {}
    return identity.get("variant") or ("teacher" if result["role"] == "teacher"
                                       else result["kd_method"])


def _metric(result: dict[str, Any]) -> tuple[str, float]:
    return ("accuracy", result["accuracy"]) if result["task"] == "classification" \
        else ("mae", result["mae"])


def results_frame(metric_files: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metric_files:
        result = json.loads(Path(path).read_text())
        name, value = _metric(result)
        identity = result.get("identity") or {}
        rows.append({"role": result["role"], "student": identity.get("student", ""),
                     "net": result["net"], "variant": _variant(result), "seed": result["seed"],
                     "metric": name, "value": value})
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (role, student, net, variant): mean, std, n and every seed's value."""
    keys = ["role", "student", "net", "variant", "metric"]
    order = {k: i for i, k in enumerate(dict.fromkeys(frame["variant"]))}  # first-seen order
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        values = group.sort_values("seed")["value"].to_numpy(float)
        row = dict(zip(keys, key))
        row.update(mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else np.nan,
                   n_seeds=len(values),
                   seeds=" ".join(f"{v:.2f}" for v in values))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["_order"] = out["variant"].map(order)
    out["_teacher"] = out["role"] != "teacher"
    return out.sort_values(["_teacher", "student", "_order"]).drop(columns=["_order", "_teacher"])


def markdown(summary: pd.DataFrame) -> str:
    metric = summary["metric"].iloc[0]
    header = "accuracy (%)" if metric == "accuracy" else "MAE"
    lines = [f"| role | student | net | variant | {header} mean ± std | seeds | per seed |",
             "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        spread = "" if np.isnan(r["std"]) else f" ± {r['std']:.2f}"
        lines.append(f"| {r['role']} | {r['student']} | {r['net']} | {r['variant']} | "
                     f"{r['mean']:.2f}{spread} | {r['n_seeds']} | {r['seeds']} |")
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
              quality: dict[str, dict] | None = None) -> pd.DataFrame:
    """Write the table (CSV, Markdown); the Markdown adds fake-set quality and stage times."""
    summary = summarise(results_frame(metric_files))
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.4f")
    text = markdown(summary)
    if quality:
        text += "\n" + quality_markdown(quality)
    if benchmark_files:
        text += "\n" + times_markdown(stage_times(benchmark_files))
    with atomic_path(out_md) as tmp:
        tmp.write_text(text)
    return summary


def quality_markdown(quality: dict[str, dict]) -> str:
    """One row per fake set: FID (and Intra-FID or label score) and teacher agreement."""
    first = next(iter(quality.values()))
    if first["task"] == "classification":
        lines = ["| fake set | FID | Intra-FID | label agreement (%) |", "|---|---|---|---|"]
        lines += [f"| {name} | {q['fid']:.2f} | {q['intra_fid']:.2f} | "
                  f"{q['label_agreement']:.1f} |" for name, q in quality.items()]
    else:
        lines = ["| fake set | FID | label score | mean window FID |", "|---|---|---|---|"]
        lines += [f"| {name} | {q['fid']:.2f} | {q['label_score']:.2f} | "
                  f"{q['window_fid_mean']:.2f} |" for name, q in quality.items()]
    return "\n".join(lines) + "\n"
