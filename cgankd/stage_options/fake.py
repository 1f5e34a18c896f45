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
    # regression: samples kept per target label. 50 x 25 = 1,250: a global filter at the
    # default rho 0.9 keeps ~1,125, enough for the default 1,000 fakes (x 20 = 1,000 kept ~900,
    # and the filter stopped short after the GAN and the density ratios had trained).
    "per_label": 25,
    "n_burnin": 1000,  # proposals per class/label that set M first (published: 5000)
    # Burn-in proposals are generated and scored anyway: once they have set M, accept each with
    # psi / M like any later batch instead of discarding them (published: discarded). At burn-in
    # 500, 150 kept per class and acceptance ~0.9 that is ~500 proposals per class, not ~670.
    "reuse_burnin": True,
    "batch_size": 500,  # proposals per batch (published: 600)
    "max_batches": 500,  # per class/label: fail clearly instead of looping forever
    "label_window": True,  # regression: the zeta-window label-consistency check (cDR-RS)
    "zeta_mult": 6.0,  # zeta = zeta_mult * kappa_base (published: 6)
    # regression, method cdrrs: the label psi is conditioned on and the kept sample is stored
    # with. "target" (published): the grid's target y for both, whatever y' the window drew
    # the sample at; "drawn": the drawn y' for both (this package before 2026-11, the
    # README's earlier digits_angle numbers). Classification draws at y itself: same either way.
    "psi_label": "target",
}
# The authors' regression sampler (UBCDingXin/cDR-RS, RC-49/cDR-RS/main.py):
# fn_sampleGAN_given_label draws y' in [y - kappa, y + kappa] (main.py:228-231) but returns
# every sample labelled y (main.py:278 "use assigned label"); fn_enhancedSampler_given_label
# scores those labels, comp_cond_density_ratio(batch_imgs, batch_labels) (main.py:434, 449),
# and returns the kept images with given_label (main.py:466). UTKFace/cDR-RS/main.py the same
# (247-248, 297, 467, 484). cGAN-KD's own samplers do the same
# (UTKFace/generate_synthetic_data.py:381, 540-552, 569; SteeringAngle/
# generate_synthetic_data.py:352, 523, 540).
PSI_LABELS = ("target", "drawn")

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

# filter.select_rho (null: off): the select_rho rule filters the final rung's pool at each rho
# of ``grid``, trains the first student net on real + those fakes once per seed of ``seeds``
# with the fakes' recipe updated by ``recipe``, and the final rung filters at the rho of the
# best mean validation score (cgankd/stages/select_rho.py). v1 chose rho so on CIFAR-10 and
# RC-49.
SELECT_RHO_DEFAULTS: dict[str, Any] = {
    # The span of the published v1 choices (CIFAR-10 0.6 / 0.7 / 0.9, RC-49 0.5 / 0.8 / 0.9,
    # METHOD.md section 5) and 1.0, no filtering: the reference a filter must beat.
    "grid": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    # Overrides of the students' fakes recipe. "last": the final weights are scored, so the
    # validation split only scores each rho and does not also pick the checkpoint it scores.
    "recipe": {"selection": "last"},
    "seeds": [0],  # student seeds per rho; the score of a rho is their mean
}
SELECT_RHO_KEYS = tuple(SELECT_RHO_DEFAULTS)


def checked_select_rho(section: Mapping[str, Any] | None,
                       where: str = "filter.select_rho") -> dict[str, Any] | None:
    """The rho selection's settings with defaults, checked; None when off (null)."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise CgankdInputError(f"{where}: must be a mapping ({', '.join(SELECT_RHO_KEYS)}) or "
                               f"null, got {section!r}")
    opts = merge_options(SELECT_RHO_DEFAULTS, section, where)
    grid, seeds = opts["grid"], opts["seeds"]
    if not isinstance(grid, (list, tuple)) or not grid:
        raise CgankdInputError(f"{where}.grid: must be a non-empty list of rho values, got "
                               f"{grid!r}")
    for i, rho in enumerate(grid):
        require_number(rho, f"{where}.grid[{i}]", 0, 1, low_open=True)
    if len(set(grid)) != len(grid):
        raise CgankdInputError(f"{where}.grid: rho values must be distinct, got {list(grid)}")
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise CgankdInputError(f"{where}.seeds: must be a non-empty list of seeds, got "
                               f"{seeds!r}")
    for i, seed in enumerate(seeds):
        require_int(seed, f"{where}.seeds[{i}]", 0)
    if len(set(seeds)) != len(seeds):
        raise CgankdInputError(f"{where}.seeds: seeds must be distinct, got {list(seeds)}")
    if not isinstance(opts["recipe"], Mapping):
        raise CgankdInputError(f"{where}.recipe: must be a mapping of recipe overrides, got "
                               f"{opts['recipe']!r}")
    return {"grid": sorted(float(r) for r in grid), "recipe": dict(opts["recipe"]),
            "seeds": list(seeds)}


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
    require_choice(opts["psi_label"], PSI_LABELS, f"{where}.psi_label")
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
                        filter_opts: Mapping[str, Any] | None = None,
                        rho: tuple[float, str] | None = None) -> None:
    """The subsampled pool must hold at least ``fake.count`` fakes: every rung keeps exactly
    that many (filtering keeps fewer than the pool, so this is a necessary condition only),
    besides a burn-in kept apart (``filter_opts``, checked). ``rho`` (value, config key): the
    rho a filtering rung applies (filter.options.rho, or with filter.select_rho the grid's
    smallest); a filter at rho keeps ~rho of the pool, so the pool must hold count / rho (per
    class, for classification), else the filter fails after the GAN and the density ratios
    have trained (or the selection at its smallest rho after training at the others)."""
    keep, rho_key = rho if rho is not None else (1.0, "")
    short = f" keeps at {rho_key} {keep} (a filter keeps ~rho of it)" if keep < 1.0 else ""
    if task == "regression":
        labels = check_label_grid(subsample["label_grid"])
        if labels is None:  # test_labels: the count is known only once the data is prepared
            return
        pool = labels * subsample["per_label"]
        if pool * keep < count:
            raise CgankdInputError(
                f"fake.count: {count} fakes cannot come from a pool of subsample.options."
                f"label_grid x per_label = {labels} labels x "
                f"{subsample['per_label']} = {pool}{short}; raise per_label or lower "
                f"fake.count")
    elif task == "classification" and num_classes:
        quota = -(-count // num_classes)  # the largest class quota (filtering.class_quotas)
        if subsample["per_class"] * keep < quota:
            raise CgankdInputError(
                f"fake.count: {count} fakes over {num_classes} classes need {quota} per "
                f"class, more than subsample.options.per_class {subsample['per_class']}"
                f"{short}; raise per_class or lower fake.count")
        if filter_opts and filter_opts["mode"] == "per_class" and filter_opts["burnin_separate"]:
            need = int(filter_opts["burnin"]) + quota
            if subsample["per_class"] < need:
                raise CgankdInputError(
                    f"filter.options.burnin_separate: {filter_opts['burnin']} burn-in samples "
                    f"per class kept apart plus a quota of {quota} need {need} per class, more "
                    f"than subsample.options.per_class {subsample['per_class']}")
