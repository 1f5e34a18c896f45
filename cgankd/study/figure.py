"""The study's figure: per factor, the paired gain and its 95 % interval against each level."""

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402

from cgankd.h5io import atomic_path  # noqa: E402
from cgankd.study.plan import BASE  # noqa: E402

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
PANEL_COLUMNS = 3  # panels per row of the figure


def _nan(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _ylabel(metric: str) -> str:
    if metric == "mae":
        return "paired gain: MAE reduction (positive = better)"
    return "paired gain: accuracy points (positive = better)"


def plot_study(rows: Sequence[Mapping[str, Any]], out_png: str | Path, title: str = "") -> None:
    """One panel per factor: gain with its interval per level, a zero line and, dotted, the
    base point's gain; one marker series per student net and comparison."""
    factors = list(dict.fromkeys(r["factor"] for r in rows if r["factor"] != BASE))
    series = list(dict.fromkeys((r["net"], r["comparison"]) for r in rows))
    many_nets = len({net for net, _ in series}) > 1
    ncols = max(1, min(PANEL_COLUMNS, len(factors)))
    nrows = max(1, math.ceil(len(factors) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    metric = next((r["metric"] for r in rows if r["metric"]), "accuracy")
    width = 0.5 / max(1, len(series))
    for ax, factor in zip(axes.flat, factors):
        points = [r for r in rows if r["factor"] == factor]
        levels = list(dict.fromkeys(r["level"] for r in points))
        drawn = False
        for i, (net, comparison) in enumerate(series):
            color = COLORS[i % len(COLORS)]
            label = f"{net}: {comparison}" if many_nets else comparison
            offset = (i - (len(series) - 1) / 2) * width
            for j, level in enumerate(levels):
                r = next((r for r in points if r["level"] == level and r["net"] == net
                          and r["comparison"] == comparison), None)
                if r is None or _nan(r["gain"]):
                    continue
                err, face = None, "white"  # open marker: one seed, no interval
                if not _nan(r["ci_low"]):
                    err, face = [[r["gain"] - r["ci_low"]], [r["ci_high"] - r["gain"]]], color
                seen = label in ax.get_legend_handles_labels()[1]
                ax.errorbar(j + offset, r["gain"], yerr=err, fmt="o", color=color, capsize=4,
                            markerfacecolor=face, label=None if seen else label)
                drawn = True
            base = next((r for r in rows if r["factor"] == BASE and r["net"] == net
                         and r["comparison"] == comparison), None)
            if base is not None and not _nan(base["gain"]):
                ax.axhline(base["gain"], color=color, ls=":", lw=1)
        ax.axhline(0.0, color="black", lw=0.8)
        if not drawn:
            ax.text(0.5, 0.5, "no finished point yet", transform=ax.transAxes, ha="center",
                    color="gray")
        ax.set_xticks(range(len(levels)), levels, rotation=30 if len(levels) > 4 else 0)
        ax.set_xlim(-0.6, len(levels) - 0.4)
        key = points[0].get("key", "") if points else ""
        ax.set_title(f"{factor} ({key})" if key else factor, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.flat[len(factors):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(_ylabel(metric), fontsize=8)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, -0.02), frameon=False)
    caption = ("mean paired gain with its 95 % t-interval over seeds (open marker: one seed); "
               "dotted: the base point")
    fig.suptitle(f"{title}\n{caption}" if title else caption, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
