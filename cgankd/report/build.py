"""The ``aggregate`` stage: the results table, its chart, and the fake-sample sheets."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from cgankd.report.plots import plot_fake_sheets, plot_variants
from cgankd.report.table import aggregate


def build_report(*, metrics: Sequence[str], quality: Sequence[str], fakes: Sequence[str],
                 rungs: Sequence[str], benchmarks: Sequence[str],
                 outputs: Mapping[str, str]) -> None:
    quality_by_rung = {Path(q).stem: json.loads(Path(q).read_text()) for q in quality}
    summary = aggregate(metrics, outputs["csv"], outputs["md"], benchmarks, quality_by_rung)
    plot_variants(summary, outputs["chart"])
    plot_fake_sheets(list(fakes), list(rungs), outputs["sheets"])
    print(Path(outputs["md"]).read_text())
