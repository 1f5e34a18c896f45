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


def aggregate(metric_files: Sequence[str | Path], out_csv: str | Path,
              out_md: str | Path) -> pd.DataFrame:
    summary = summarise(results_frame(metric_files))
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(out_md) as tmp:
        tmp.write_text(markdown(summary))
    return summary
