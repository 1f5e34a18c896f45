"""The ``aggregate`` stage: the results table, its chart, the fake-sample sheets, and the
convergence check."""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cgankd.h5io import atomic_path
from cgankd.report.convergence import convergence_check, convergence_markdown, flag_markdown
from cgankd.report.plots import plot_fake_sheets, plot_variants
from cgankd.report.quality_table import with_cas
from cgankd.report.rho_selection import rho_selection_markdown
from cgankd.report.table import aggregate


def _json_safe(obj: Any) -> Any:
    """NaN (an undefined interval) as null: strict JSON has no NaN."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def run(*, metrics: Sequence[str], quality: Sequence[str], fakes: Sequence[str],
        rungs: Sequence[str], benchmarks: Sequence[str],
        outputs: Mapping[str, str], convergence_base: Sequence[str] = (),
        convergence: Sequence[str] = (), factor: float = 2.0,
        cas: Sequence[str] = (), train: str | None = None,
        rho_selection: Sequence[str] = ()) -> None:
    """Write every aggregate output; ``convergence`` (the factor-x runs' test metrics, with the
    1x ones in ``convergence_base``) adds convergence.json and the check's table section;
    ``rho_selection`` (select_rho's file, when rho is chosen on validation) a line with the
    chosen rho and its curve."""
    quality_by_rung = {Path(q).stem: json.loads(Path(q).read_text()) for q in quality}
    quality_by_rung = with_cas(quality_by_rung, cas)  # CAS beside each rung's quality
    flag, sections = "", []
    if convergence:
        check = convergence_check(convergence_base, convergence, factor)
        with atomic_path(outputs["convergence"]) as tmp:
            tmp.write_text(json.dumps(_json_safe(check), indent=1))
        flag, sections = flag_markdown(check), [convergence_markdown(check)]
    sections += [rho_selection_markdown(json.loads(Path(p).read_text())) for p in rho_selection]
    summary = aggregate(metrics, outputs["csv"], outputs["md"], benchmarks, quality_by_rung,
                        flag=flag, sections=sections)
    plot_variants(summary, outputs["chart"])
    plot_fake_sheets(list(fakes), list(rungs), outputs["sheets"], train=train)
    print(Path(outputs["md"]).read_text())
