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
