"""Figures for the results report: the variant table as a chart, and sheets of fake samples."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cgankd.formats import SPLIT  # noqa: E402
from cgankd.h5io import atomic_path, check_h5, open_h5, read_array  # noqa: E402


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


# Sample sheets: tiles on white, a wider white band between the real block and the fakes.
GAP_FRACTION = 8  # gap between tiles: 1/8 of a tile side, at least one pixel
BAND_TILES = 3  # the real / fake band is this many gaps wide
TILE_INCHES = 0.32  # printed size of one tile


def _rows_from(f, rows: np.ndarray) -> np.ndarray:
    """images[rows] in the order of ``rows`` (h5py reads sorted, unique indices only)."""
    if len(rows) == 0:
        return np.empty((0, *f["images"].shape[1:]), np.uint8)
    unique, back = np.unique(rows, return_inverse=True)
    return f["images"][unique][back]


def _class_picks(labels: np.ndarray, n_rows: int, count: int, rng) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(labels == k))[:count] for k in range(n_rows)]


def _nearest(labels: np.ndarray, target: float, count: int) -> np.ndarray:
    """The ``count`` rows whose labels are nearest ``target``, in label order."""
    rows = np.argsort(np.abs(labels - target), kind="stable")[:count]
    return rows[np.argsort(labels[rows], kind="stable")]


def _sheet(fake_path, train_h5, per_row: int, n_real: int, n_rows: int, seed: int):
    """(tile rows [(reals, fakes)], row names, task) of one fake set. The reals have their
    own generator, so every panel of a figure shows the same real images."""
    rng, real_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    with open_h5(fake_path) as f:
        attrs = check_h5(f, SPLIT, ("images", "labels"), attrs=("task",))
        labels = read_array(f, "labels")
        task = attrs["task"]
        if task == "classification":
            n_rows = min(n_rows, int(attrs.get("num_classes", labels.max() + 1)))
            fake_rows = _class_picks(labels, n_rows, per_row, rng)
            targets = list(range(n_rows))
        else:  # targets evenly over the fakes' label range, fakes nearest each
            targets = np.linspace(labels.min(), labels.max(), n_rows).tolist()
            fake_rows = [_nearest(labels.astype(np.float64), t, per_row) for t in targets]
        fakes = [_rows_from(f, r) for r in fake_rows]
    reals = [np.empty((0, *fakes[0].shape[1:]), np.uint8)] * len(targets)
    names = [str(t) for t in targets]
    if train_h5 is not None and n_real > 0:
        with open_h5(train_h5) as f:
            real_attrs = check_h5(f, SPLIT, ("images", "labels"), attrs=())
            real_labels = read_array(f, "labels")
            if task == "classification":
                picks = _class_picks(real_labels, len(targets), n_real, real_rng)
            else:  # the training images at the labels nearest each row's target
                picks = [_nearest(real_labels.astype(np.float64), t, n_real) for t in targets]
            reals = [_rows_from(f, r) for r in picks]
        class_names = real_attrs.get("class_names")
        if task == "classification" and isinstance(class_names, list):
            names = [class_names[k] for k in targets]
        unit = real_attrs.get("label_unit", "")
    else:
        unit = ""
    if task == "regression":
        names = [f"{t:.1f}{f' {unit}' if unit else ''}" for t in targets]
    return list(zip(reals, fakes)), names, task


def _canvas(rows: list[tuple[np.ndarray, np.ndarray]], n_real: int,
            per_row: int) -> tuple[np.ndarray, list[float], tuple[float, float] | None]:
    """White canvas with every tile placed: (image, row centres, (real, fake) block centres)."""
    sample = next((a for pair in rows for a in pair if len(a)), None)
    c, h, w = sample.shape[1:] if sample is not None else (1, 8, 8)
    gap = max(1, h // GAP_FRACTION)
    band = BAND_TILES * gap if n_real else 0
    width = n_real * (w + gap) + band + per_row * (w + gap) + gap
    height = len(rows) * (h + gap) + gap
    canvas = np.full((height, width, c), 255, np.uint8)
    for r, (reals, fakes) in enumerate(rows):
        top = gap + r * (h + gap)
        for i, img in enumerate(reals):
            left = gap + i * (w + gap)
            canvas[top:top + h, left:left + w] = img.transpose(1, 2, 0)
        for i, img in enumerate(fakes):
            left = gap + n_real * (w + gap) + band + i * (w + gap)
            canvas[top:top + h, left:left + w] = img.transpose(1, 2, 0)
    centres = [gap + r * (h + gap) + h / 2 for r in range(len(rows))]
    real_mid = gap + n_real * (w + gap) / 2
    fake_mid = gap + n_real * (w + gap) + band + per_row * (w + gap) / 2
    return (canvas[..., 0] if c == 1 else canvas), centres, \
        ((real_mid, fake_mid) if n_real else None)


def plot_fake_sheets(fake_files: Sequence[str | Path], names: Sequence[str], out_png: str | Path,
                     train: str | Path | None = None, per_row: int = 10, n_real: int = 3,
                     rows: int = 10, seed: int = 0) -> None:
    """One panel per fake set: a row per class (the first ``rows`` classes) or per target
    label (``rows`` evenly over the fakes' label range), ``per_row`` fakes each, and, with
    ``train``, ``n_real`` real training images of that class (or at the training labels
    nearest the target) on the left, marked "real"."""
    if not fake_files:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no fake data in this experiment (fake.enabled: false)",
                ha="center", va="center")
        ax.axis("off")
        _save(fig, out_png)
        return
    shown_real = n_real if train is not None else 0
    cols = shown_real + per_row + (BAND_TILES / GAP_FRACTION if shown_real else 0)
    # constrained layout keeps each panel's row labels clear of the panel to its left
    fig, axes = plt.subplots(1, len(fake_files), squeeze=False, layout="constrained", figsize=(
        (cols * TILE_INCHES + 1.0) * len(fake_files), rows * TILE_INCHES + 0.8))
    for ax, path, name in zip(axes[0], fake_files, names):
        tiles, row_names, _ = _sheet(path, train, per_row, shown_real, rows, seed)
        sheet, centres, blocks = _canvas(tiles, shown_real, per_row)
        ax.imshow(sheet, cmap="gray" if sheet.ndim == 2 else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_yticks(centres, row_names, fontsize=7)
        ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if blocks is not None:
            ax.set_xticks(blocks, ["real", f"{name} fakes"], fontsize=8)
            ax.xaxis.tick_top()
        else:
            ax.set_title(name, fontsize=9)
    _save(fig, out_png)
