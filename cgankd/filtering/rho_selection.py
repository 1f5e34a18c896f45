"""The filter's rho chosen on validation (the select_rho rule): the choice rule, and the file
that carries the choice to the final rung's filter_relabel jobs.

The file ``fake/rho_selection.json`` holds one entry per rho of the grid (fakes that passed
the cutoff, validation score per student seed and their mean) and ``chosen_rho``.
"""

import json
from collections.abc import Mapping
from pathlib import Path

from cgankd.errors import CgankdInputError

FORMAT = "cgankd.rho_selection/1"
# Mean validation scores closer than this are equal: float noise of the mean, not a result.
TIE_TOLERANCE = 1e-9
TIE_RULE = ("the highest mean validation score; among equal scores the larger rho, which "
            "drops fewer fakes: a filter that does not measurably help should not filter more")


def choose_rho(mean_scores: Mapping[float, float]) -> float:
    """The rho of the highest mean score (higher is better: accuracy, or -MAE); ties go to
    the larger rho (TIE_RULE)."""
    if not mean_scores:
        raise ValueError("choose_rho: no rho was scored")
    best = max(mean_scores.values())
    return max(rho for rho, score in mean_scores.items() if score >= best - TIE_TOLERANCE)


def read_chosen_rho(path: str | Path) -> float:
    """``chosen_rho`` of a selection file; one line naming the file if it holds none."""
    try:
        selection = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CgankdInputError(f"{path}: not a readable rho selection file ({error})") from None
    rho = selection.get("chosen_rho") if isinstance(selection, dict) else None
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho <= 1:
        raise CgankdInputError(f"{path}: 'chosen_rho' must be a number in (0, 1], got {rho!r}")
    return float(rho)
