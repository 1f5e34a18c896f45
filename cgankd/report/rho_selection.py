"""The rho selection in the report: its curve as a PNG (written by select_rho) and one line of
table.md (written by aggregate)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402

from cgankd.h5io import atomic_path  # noqa: E402


def _curve(selection: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(rho, mean validation metric) of each grid point: accuracy (%) or MAE."""
    rows = selection["per_rho"]
    return [r["rho"] for r in rows], [r["mean_metric"] for r in rows]


def rho_selection_markdown(selection: Mapping[str, Any]) -> str:
    """One line: the chosen rho and the curve's numbers."""
    rhos, values = _curve(selection)
    curve = ", ".join(f"{rho:g}: {value:.3f}" for rho, value in zip(rhos, values))
    seeds = len(selection["seeds"])
    return (f"Filter rho chosen on validation: **{selection['chosen_rho']:g}** (validation "
            f"{selection['metric']} of {selection['student']} on real + {selection['count']} "
            f"fakes, mean of {seeds} seed{'s' if seeds > 1 else ''}, by rho: {curve}).")


def plot_rho_curve(selection: Mapping[str, Any], out_png: str | Path) -> None:
    """Validation metric against rho: each seed's point, the mean's line, the chosen rho."""
    rhos, means = _curve(selection)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for row in selection["per_rho"]:
        seeds = list(row["val_metric"].values())
        ax.scatter([row["rho"]] * len(seeds), seeds, color="#8c8c8c", s=12, zorder=2)
    ax.plot(rhos, means, marker="o", color="#4c72b0", zorder=3, label="mean over seeds")
    ax.axvline(selection["chosen_rho"], color="#c44e52", ls="--",
               label=f"chosen rho {selection['chosen_rho']:g}")
    ax.set_xlabel("filter rho (quantile of the teacher's loss kept)")
    ax.set_ylabel(f"validation {selection['metric']}")
    ax.legend(loc="best", fontsize=8)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
