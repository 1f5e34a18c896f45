"""Figures for the results report: the variant table as a chart, and sheets of fake samples."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cgankd.h5io import atomic_path, decode_attrs, open_h5, read_array  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_variants(summary: pd.DataFrame, out_png: str | Path) -> None:
    """Mean +/- std of every student variant (one panel per student net), teacher as a line."""
    metric = summary["metric"].iloc[0]
    students = summary[summary["role"] == "student"]
    teacher = summary[summary["role"] == "teacher"]
    names = list(dict.fromkeys(students["student"]))
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(1.2 + 0.9 * students["variant"]
                                                              .nunique() * max(1, len(names)), 4),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = students[students["student"] == name]
        x = np.arange(len(rows))
        ax.bar(x, rows["mean"], yerr=rows["std"].fillna(0), capsize=4, color="#4c72b0")
        ax.set_xticks(x, rows["variant"], rotation=35, ha="right")
        ax.set_title(f"student {name} ({rows['net'].iloc[0]})")
        if len(teacher):
            ax.axhline(teacher["mean"].iloc[0], color="#c44e52", ls="--", label="teacher")
            ax.legend(loc="lower right")
        low = min(rows["mean"].min(), teacher["mean"].min() if len(teacher) else np.inf)
        high = max(rows["mean"].max(), teacher["mean"].max() if len(teacher) else -np.inf)
        pad = 0.25 * max(high - low, 1e-6)
        ax.set_ylim(low - 2 * pad, high + pad)
        ax.set_ylabel("test accuracy (%)" if metric == "accuracy" else "test MAE")
        ax.grid(axis="y", alpha=0.3)
    _save(fig, out_png)


def plot_fake_sheets(fake_files: Sequence[str | Path], names: Sequence[str], out_png: str | Path,
                     per_row: int = 10, rows: int = 10, seed: int = 0) -> None:
    """One panel per fake set: a few samples per class (or sorted by label) with their labels."""
    if not fake_files:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no fake data in this experiment (fake.enabled: false)",
                ha="center", va="center")
        ax.axis("off")
        _save(fig, out_png)
        return
    fig, axes = plt.subplots(1, len(fake_files), figsize=(3.2 * len(fake_files), 3.6),
                             squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, path, name in zip(axes[0], fake_files, names):
        with open_h5(path) as f:
            labels = read_array(f, "labels")
            task = decode_attrs(f.attrs)["task"]
            if task == "classification":
                picks = [rng.permutation(np.flatnonzero(labels == k))[:per_row]
                         for k in range(rows)]
                picks = [p for p in picks if len(p) == per_row]
                order = np.concatenate(picks) if picks else np.empty(0, int)
            else:
                order = np.sort(rng.choice(len(labels), min(len(labels), per_row * rows),
                                           replace=False))
                order = order[np.argsort(labels[order], kind="stable")]
            images = f["images"][np.sort(order)] if len(order) else np.empty((0, 1, 1, 1))
            images = images[np.argsort(np.argsort(order))] if len(order) else images
        sheet = _tile(images, per_row)
        ax.imshow(sheet, cmap="gray" if sheet.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(name)
        ax.axis("off")
    _save(fig, out_png)


def _tile(images: np.ndarray, per_row: int) -> np.ndarray:
    """(N, C, H, W) uint8 -> one (rows*H, per_row*W[, C]) image."""
    if len(images) == 0:
        return np.zeros((1, 1), np.uint8)
    n, c, h, w = images.shape
    rows = -(-n // per_row)
    canvas = np.zeros((rows * h, per_row * w, c), np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, per_row)
        canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = img.transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas
