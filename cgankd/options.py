"""Defaults defined once, overrides checked: the options pattern every module uses.

A module declares ``DEFAULTS = {key: value}`` with a comment per key; ``merge_options`` applies
a config's overrides and rejects any key the module does not know, naming it and where it came
from, so a typo in YAML fails loudly instead of silently training with a default.
"""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError


def merge_options(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None,
                  where: str) -> dict[str, Any]:
    """Return ``defaults`` updated by ``overrides``; unknown keys raise, naming ``where.key``."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise CgankdInputError(f"unknown option {where}.{unknown[0]}; known: "
                               f"{', '.join(sorted(defaults))}")
    merged = dict(defaults)
    merged.update(overrides)
    return merged


def require_int(value: Any, where: str, low: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) >= ``low``; one line naming ``where`` if not."""
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        bound = "" if low is None else f" >= {low}"
        raise CgankdInputError(f"{where}: must be an integer{bound}, got {value!r}")
    return value


def require_number(value: Any, where: str, low: float | None = None, high: float | None = None,
                   *, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` if it is a number in the given range (closed unless ``*_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        span = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (lo or hi) else ""
        raise CgankdInputError(f"{where}: must be a number{span}, got {value!r}")
    return value


def require_choice(value: Any, choices: tuple[Any, ...], where: str) -> Any:
    """``value`` if it is one of ``choices``; one line listing them if not."""
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices):
        ok = False
    else:
        ok = value in choices
    if not ok:
        raise CgankdInputError(f"{where}: {value!r} is not one of "
                               f"{', '.join(str(c) for c in choices)}")
    return value
