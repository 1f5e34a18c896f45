"""The ablation ladder, in one place: which pool each rung draws from and which filter and
sampler options it keeps. Torch-free: the workflow (rules/common.smk) imports it to wire the
rules and to check the config when it plans the run."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError

REAL = "real"  # the student's training set without fakes

# Rung -> the pool it filters (subsample method) and what the teacher does to it. Ladder order.
RUNGS: dict[str, dict[str, Any]] = {
    "unprocessed": {"sampler": "none", "filter": False, "relabel": False},
    "subsampled": {"sampler": "cdrrs", "filter": False, "relabel": False},
    "filtered": {"sampler": "cdrrs", "filter": True, "relabel": False},
    "relabelled": {"sampler": "cdrrs", "filter": True, "relabel": True},
}

# Options only the density-ratio sampler reads: plain generation (method none) ignores them,
# so the unprocessed pool's rule does not see them and does not rerun when they change.
CDRRS_ONLY = ("n_burnin", "reuse_burnin", "label_window", "zeta_mult", "psi_label")
# Filter options an unfiltered rung does not use: dropped, so tuning the filter reruns only
# the rungs it changes, and their summaries report no rho they did not apply.
FILTER_ONLY = ("rho", "burnin", "burnin_separate", "mode")
# Options each rung sets itself: a user value would be silently overridden, so it is rejected.
RUNG_OWNED = {"subsample.options": ("method",), "filter.options": ("relabel",)}


def options_for_method(options: Mapping[str, Any] | None, method: str) -> dict[str, Any]:
    """The subsample options that can change a pool drawn by ``method``, with the method."""
    opts = {**(options or {}), "method": method}
    if method == "none":
        opts = {key: value for key, value in opts.items() if key not in CDRRS_ONLY}
    return opts


def rung_filter_options(rung: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filter options ``rung`` uses: unfiltered rungs drop rho, burnin and mode (mode
    none), and every rung sets relabel."""
    spec = RUNGS[rung]
    opts = dict(options or {})
    if not spec["filter"]:
        opts = {k: v for k, v in opts.items() if k not in FILTER_ONLY}
        opts["mode"] = "none"
    opts["relabel"] = spec["relabel"]
    return opts


def check_rung_owned(config: Mapping[str, Any]) -> None:
    """One line for a user-set option that belongs to the ladder rung."""
    for where, keys in RUNG_OWNED.items():
        section, _ = where.split(".")
        options = (config.get(section) or {}).get("options") or {}
        for key in keys:
            if key in options:
                raise CgankdInputError(
                    f"{where}.{key}: set by each ladder rung ({', '.join(RUNGS)}), not by the "
                    f"config; choose the rung with fake.final instead")
