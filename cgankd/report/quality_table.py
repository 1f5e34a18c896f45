"""The fake-set quality section of the results table: one row per ladder rung.

Each value stands beside its real-vs-real reference (the validation split measured in the fakes'
place against the test split) and their ratio, e.g. "0.80 (ref 0.27, 2.9x)". FID, recall and
coverage depend on how many samples are compared, so the value beside a reference is the fake
set's mean over subsets with the reference's per-group counts (``matched`` in the quality JSON,
cgankd/metrics/quality.py); a second table gives the whole fake set's values. CAS (a student
net trained on the fakes alone, tested on real data) stands beside the same net trained on the
real training set alone (NOKD, same seeds).
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MANIFOLD = ("precision", "recall", "density", "coverage")
REAL = "real"  # the fakes folder of real-only students (rules/common.smk REAL)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def cas_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{rung: CAS over seeds beside the real-only reference} from evaluated model dicts (the
    ``test_metrics.json`` of CAS models, role "cas", and of the NOKD students they compare
    with). The reference uses the CAS net's NOKD students of the seeds CAS ran with."""
    metric = {"classification": "accuracy", "regression": "mae"}
    cas, real = {}, {}
    for r in results:
        identity = r.get("identity") or {}
        value = (float(r[metric[r["task"]]]), int(r["seed"]), identity.get("student"))
        if r["role"] == "cas":
            cas.setdefault(identity["fakes"], []).append(value)
        elif identity.get("fakes") == REAL and r.get("kd_method") == "none":
            real[(identity.get("student"), value[1])] = value[0]
    task = next((r["task"] for r in results if r["role"] == "cas"), None)
    out = {}
    for rung, rows in cas.items():
        rows.sort(key=lambda v: v[1])
        mean, std = _mean_std([v for v, _, _ in rows])
        entry = {"metric": metric[task], "student": rows[0][2], "seeds": [s for _, s, _ in rows],
                 "mean": mean, "std": std, "real_mean": None, "real_std": None, "ratio": None}
        refs = [real[(student, seed)] for _, seed, student in rows if (student, seed) in real]
        if refs:
            entry["real_mean"], entry["real_std"] = _mean_std(refs)
            entry["real_seeds"] = len(refs)
            entry["ratio"] = mean / entry["real_mean"] if entry["real_mean"] else None
        out[rung] = entry
    return out


def with_cas(quality: Mapping[str, dict], cas_files: Sequence[str | Path]) -> dict[str, dict]:
    """``quality`` (rung -> quality JSON) with each rung's CAS summary under ``cas``."""
    summary = cas_summary([json.loads(Path(p).read_text()) for p in cas_files])
    return {rung: {**q, **({"cas": summary[rung]} if rung in summary else {})}
            for rung, q in quality.items()}


def _num(value: float | None, digits: int | str = 2) -> str:
    """``digits`` decimals, or "g": three significant digits (FID spans 0.01 to 100)."""
    if value is None:
        return "n/a"
    return f"{value:#.3g}" if digits == "g" else f"{value:.{digits}f}"


def beside(value: float | None, ref: float | None, digits: int | str = 2) -> str:
    """"value (ref r, q x)": the ratio only when both exist and the reference is not 0."""
    if ref is None:
        return _num(value, digits)
    ratio = f", {value / ref:.2f}x" if value is not None and ref != 0 else ""
    return f"{_num(value, digits)} (ref {_num(ref, digits)}{ratio})"


def _cas_cell(cas: Mapping[str, Any] | None) -> str:
    if not cas:
        return "n/a"
    digits = 1 if cas["metric"] == "accuracy" else 2
    spread = "" if cas["std"] is None else f" ± {cas['std']:.{digits}f}"
    if cas["real_mean"] is None:
        return f"{cas['mean']:.{digits}f}{spread} (real-only not found)"
    return (f"{cas['mean']:.{digits}f}{spread} (real {cas['real_mean']:.{digits}f}, "
            f"{cas['ratio']:.2f}x)")


def _columns(task: str) -> list[tuple[str, str, int | str]]:
    """(header, JSON key, format) of the compared columns."""
    group = ("Intra-FID", "intra_fid") if task == "classification" \
        else ("window FID", "window_fid_mean")
    return [("FID", "fid", "g"), (*group, "g"), *[(m, m, 2) for m in MANIFOLD]]


def quality_markdown(quality: Mapping[str, dict]) -> str:
    """One row per fake set: FID, Intra-FID (or window FID), precision, recall, density,
    coverage, each beside its real-vs-real reference, label agreement (or label score) and CAS
    beside the real-only student; then the whole fake sets' values."""
    first = next(iter(quality.values()))
    task = first["task"]
    unit = first.get("label_unit") or ""
    columns = _columns(task)
    if task == "classification":
        label = ("label agreement (%)", "label_agreement", 1)
        cas_header = f"CAS accuracy (%), {_cas_net(quality)}"
    else:
        label = (f"label score{f' ({unit})' if unit else ''}", "label_score", 2)
        cas_header = f"CAS MAE, {_cas_net(quality)}"
    headers = [h for h, _, _ in columns] + [label[0], cas_header]
    lines = ["| fake set | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for name, q in quality.items():
        ref, compared = q.get("reference"), q.get("matched") or q
        cells = [beside(compared.get(key), (ref or {}).get(key), d) for _, key, d in columns]
        # label agreement / score: all fakes (their mean does not depend on the count)
        cells.append(beside(q.get(label[1]), (ref or {}).get(label[1]), label[2]))
        cells.append(_cas_cell(q.get("cas")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", _notes(first, task)]
    lines += ["", "| fake set (all fakes) | n | " + " | ".join(h for h, _, _ in columns) + " |",
              "|---" * (len(columns) + 2) + "|"]
    for name, q in quality.items():
        lines.append(f"| {name} | {q.get('n_fake', 'n/a')} | "
                     + " | ".join(_num(q.get(key), d) for _, key, d in columns) + " |")
    return "\n".join(lines) + "\n"


def _cas_net(quality: Mapping[str, dict]) -> str:
    nets = {q["cas"]["student"] for q in quality.values() if q.get("cas")}
    return next(iter(nets)) if len(nets) == 1 else "first student net"


def _notes(q: Mapping[str, Any], task: str) -> str:
    groups = "class" if task == "classification" else "label window"
    matched, ref = q.get("matched"), q.get("reference")
    if not ref:
        return ("No reference in these quality files (no validation split given): values are "
                "the whole fake sets' against the test split.")
    size = (f"subsets of the fakes with the validation split's count per {groups} "
            f"({matched['n_fake']} images, mean of {matched['draws']} "
            f"draw{'s' if matched['draws'] > 1 else ''})"
            if matched else "the whole fake sets")
    label = ("label agreement: all fakes; its ref is the metric net's accuracy on the "
             "validation split" if task == "classification" else
             "label score: all fakes; its ref is the metric net's MAE on the validation split")
    space = ("the quality extractor's feature space (quality.features: extractor; the metric "
             "net judges the labels)" if q.get("feature_space") == "extractor"
             else "the metric net's feature space")
    return (f"Values beside a reference: {size} against the test split, in {space}; ref: the validation split ({ref['n_fake']} real images) against "
            f"the test split; the ratio is value / ref (FID: lower is better; precision, "
            f"recall, coverage: up to 1, density about 1 for real data). {label}. CAS: the "
            f"net trained on each fake set alone, tested on the test split; real: the same "
            f"net trained on the real training set alone (NOKD, same seeds); for an MAE, a ratio "
            f"above 1 is worse.")
