"""The ``subsample`` and ``filter_relabel`` stages' options (``subsample.options``,
``filter.options``): defaults defined once, checked without torch, so the workflow checks them
when it plans the run; ``cgankd.stages.subsample`` and ``cgankd.stages.filter_relabel`` use the
same."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice, require_int, require_number

SAMPLERS = ("cdrrs", "none")  # density-ratio rejection sampling; plain generation
FILTER_MODES = ("per_class", "global", "none")

SUBSAMPLE_DEFAULTS: dict[str, Any] = {
    "method": "cdrrs",  # cdrrs: density-ratio rejection sampling; none: plain generation
    "per_class": 200,  # classification: samples kept per class (the filter's pool)
    # regression: the target labels (check_label_grid): an int n = n midpoints of the label
    # range; {integers: [lo, hi]}; {linspace: [lo, hi, n]} (endpoints included); test_labels
    "label_grid": 50,
    "per_label": 20,  # regression: samples kept per target label
    "n_burnin": 1000,  # proposals per class/label that set M first (published: 5000)
    # Burn-in proposals are generated and scored anyway: once they have set M, accept each with
    # psi / M like any later batch instead of discarding them (published: discarded). At burn-in
    # 500, 150 kept per class and acceptance ~0.9 that is ~500 proposals per class, not ~670.
    "reuse_burnin": True,
    "batch_size": 500,  # proposals per batch (published: 600)
    "max_batches": 500,  # per class/label: fail clearly instead of looping forever
    "label_window": True,  # regression: the zeta-window label-consistency check (cDR-RS)
    "zeta_mult": 6.0,  # zeta = zeta_mult * kappa_base (published: 6)
}

FILTER_DEFAULTS: dict[str, Any] = {
    "mode": "per_class",  # per_class (v3) | global (v1, regression) | none
    "rho": 0.9,  # quantile of the teacher's loss kept (grid-searched on validation)
    "burnin": 1000,  # per_class: samples per class whose losses set the cutoff (published)
    # per_class: true keeps none of the burn-in samples, so the cutoff is set on fakes apart
    # from those it judges (the authors' scripts draw the burn-in separately); false: the
    # burn-in samples are the pool's first and may be kept
    "burnin_separate": False,
    "relabel": False,  # replace labels by the teacher's (v1 classification, regression)
    "batch_size": 512,  # teacher scoring batch
}


# label_grid: the test split's distinct labels (RC-49: every test angle), known only once the
# data is prepared; "min"/"max" as a linspace end: the training label range's end.
TEST_LABELS = "test_labels"
RANGE_ENDS = ("min", "max")


def check_label_grid(grid: Any, where: str = "subsample.options.label_grid") -> int | None:
    """A label grid's form checked; its label count, or None when only the data tells
    (test_labels)."""
    if grid == TEST_LABELS:
        return None
    if isinstance(grid, int) and not isinstance(grid, bool):
        return require_int(grid, where, 1)
    usage = (f"an integer n (midpoints), {{integers: [lo, hi]}}, {{linspace: [lo, hi, n]}} or "
             f"{TEST_LABELS}")
    if not isinstance(grid, Mapping) or len(grid) != 1:
        raise CgankdInputError(f"{where}: must be {usage}, got {grid!r}")
    (form, spec), = grid.items()
    if form == "integers":
        if not isinstance(spec, (list, tuple)) or len(spec) != 2:
            raise CgankdInputError(f"{where}.integers: must be [lo, hi], got {spec!r}")
        lo, hi = (require_int(v, f"{where}.integers", None) for v in spec)
        if hi < lo:
            raise CgankdInputError(f"{where}.integers: hi {hi} is below lo {lo}")
        return hi - lo + 1
    if form == "linspace":
        if not isinstance(spec, (list, tuple)) or len(spec) != 3:
            raise CgankdInputError(f"{where}.linspace: must be [lo, hi, n], got {spec!r}")
        for end, value in zip(RANGE_ENDS, spec[:2]):
            if value != end:
                require_number(value, f"{where}.linspace ({end} end, or {end!r})")
        n = require_int(spec[2], f"{where}.linspace n", 2)
        if all(not isinstance(v, str) for v in spec[:2]) and spec[1] <= spec[0]:
            raise CgankdInputError(f"{where}.linspace: hi {spec[1]} must exceed lo {spec[0]}")
        return n
    raise CgankdInputError(f"{where}: unknown form {form!r}; must be {usage}")


def _require_bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise CgankdInputError(f"{where}: must be true or false, got {value!r}")


def checked_subsample_options(options: Mapping[str, Any] | None,
                              where: str = "subsample.options") -> dict[str, Any]:
    opts = merge_options(SUBSAMPLE_DEFAULTS, options, where)
    require_choice(opts["method"], SAMPLERS, f"{where}.method")
    check_label_grid(opts["label_grid"], f"{where}.label_grid")
    for key in ("per_class", "per_label", "n_burnin", "batch_size", "max_batches"):
        require_int(opts[key], f"{where}.{key}", 1)
    for key in ("reuse_burnin", "label_window"):
        _require_bool(opts[key], f"{where}.{key}")
    require_number(opts["zeta_mult"], f"{where}.zeta_mult", 0, low_open=True)
    return opts


def checked_filter_options(options: Mapping[str, Any] | None,
                           where: str = "filter.options") -> dict[str, Any]:
    opts = merge_options(FILTER_DEFAULTS, options, where)
    require_choice(opts["mode"], FILTER_MODES, f"{where}.mode")
    require_number(opts["rho"], f"{where}.rho", 0, 1, low_open=True)
    require_int(opts["burnin"], f"{where}.burnin", 1)
    require_int(opts["batch_size"], f"{where}.batch_size", 1)
    _require_bool(opts["relabel"], f"{where}.relabel")
    _require_bool(opts["burnin_separate"], f"{where}.burnin_separate")
    return opts


def check_pool_supplies(count: int, subsample: Mapping[str, Any], task: str | None,
                        num_classes: int | None,
                        filter_opts: Mapping[str, Any] | None = None) -> None:
    """The subsampled pool must hold at least ``fake.count`` fakes: every rung keeps exactly
    that many (filtering keeps fewer than the pool, so this is a necessary condition only),
    besides a burn-in kept apart (``filter_opts``, checked)."""
    if task == "regression":
        labels = check_label_grid(subsample["label_grid"])
        if labels is None:  # test_labels: the count is known only once the data is prepared
            return
        pool = labels * subsample["per_label"]
        if pool < count:
            raise CgankdInputError(
                f"fake.count: {count} fakes cannot come from a pool of subsample.options."
                f"label_grid x per_label = {labels} labels x "
                f"{subsample['per_label']} = {pool}; raise per_label or lower fake.count")
    elif task == "classification" and num_classes:
        quota = -(-count // num_classes)  # the largest class quota (filtering.class_quotas)
        if subsample["per_class"] < quota:
            raise CgankdInputError(
                f"fake.count: {count} fakes over {num_classes} classes need {quota} per "
                f"class, more than subsample.options.per_class {subsample['per_class']}; raise "
                f"per_class or lower fake.count")
        if filter_opts and filter_opts["mode"] == "per_class" and filter_opts["burnin_separate"]:
            need = int(filter_opts["burnin"]) + quota
            if subsample["per_class"] < need:
                raise CgankdInputError(
                    f"filter.options.burnin_separate: {filter_opts['burnin']} burn-in samples "
                    f"per class kept apart plus a quota of {quota} need {need} per class, more "
                    f"than subsample.options.per_class {subsample['per_class']}")
