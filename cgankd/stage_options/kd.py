"""The students' KD settings (``students.methods``, ``fake.kd_methods``, ``kd.convention``,
``kd.weights``, ``kd.options``): weights defined once, checked without torch. ``cgankd.kd.objective`` uses the
same weights; each term's option values are checked by the term when it is built, their keys
here (from ``names.KD_TERMS``)."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options, require_choice
from cgankd.stage_options.names import KD_TERMS, check_known, check_plain_name

NO_KD = "none"  # the method name for a student trained on the task loss alone
VANILLA_KD = "kd"  # vanilla KD is the alpha term, never a beta term

# Default weights (METHOD.md section 6).
TASK_ONLY_WEIGHTS = {"gamma": 1.0, "alpha": 0.0, "beta": 0.0}
# Hinton KD alone: mostly the soft targets, a tenth of the hard-label loss.
VANILLA_KD_WEIGHTS = {"gamma": 0.1, "alpha": 0.9, "beta": 0.0}
# Other methods run on top of the full task loss (gamma 1) and, by convention, vanilla KD:
# cgankd = the cGAN-KD authors' distillation scripts (train_student.py -r 1 -a 1 -b <beta> for
# every non-KD method: CE + KL + beta * method); repdistiller = RepDistiller's own runs, alpha 0
# (CE + beta * method, no KL term). The published tables use the first, so it is the default.
CONVENTION_ALPHA = {"cgankd": 1.0, "repdistiller": 0.0}
DEFAULT_CONVENTION = "cgankd"  # config/schema.yaml kd.convention mirrors this default
# CRD's negatives: exact = drawn from the other classes only (RepDistiller's and the cGAN-KD
# authors' --mode exact, the default); uniform = any other sample, the anchor's class included.
CRD_NEGATIVES = ("exact", "uniform")
# beta evens out the very different scales of the methods' raw terms.
METHOD_BETA = {
    "fitnet": 100.0,
    "at": 1000.0,
    "sp": 3000.0,
    "vid": 1.0,
    "rkd": 1.0,  # its distance/angle weights (25/50) live inside the term
    "pkt": 30000.0,
    "crd": 0.8,
}


def check_method(method: Any, where: str, task: str | None = None) -> str:
    """A student's KD method: none or a registered term (for ``task`` when known)."""
    if method == NO_KD:
        return method
    check_known(method, KD_TERMS, "KD method", where)
    tasks = KD_TERMS[method][0]
    if task in ("classification", "regression") and task not in tasks:
        raise CgankdInputError(f"{where}: KD method {method!r} does not apply to {task}")
    return check_plain_name(method, where)


def check_convention(convention: Any, where: str = "kd.convention") -> str:
    require_choice(convention, tuple(CONVENTION_ALPHA), where)
    return convention


def default_weights(method: str, where: str = "kd.weights",
                    convention: str = DEFAULT_CONVENTION) -> dict[str, float]:
    """``method``'s {gamma, alpha, beta} under ``convention`` (see CONVENTION_ALPHA)."""
    check_convention(convention)
    if method == NO_KD:
        return dict(TASK_ONLY_WEIGHTS)
    if method == VANILLA_KD:
        return dict(VANILLA_KD_WEIGHTS)
    check_known(method, KD_TERMS, "KD loss", where)  # an unknown name is the user's error
    if method not in METHOD_BETA:
        raise ValueError(f"KD loss {method!r} is registered without a default beta")
    return {**TASK_ONLY_WEIGHTS, "alpha": CONVENTION_ALPHA[convention],
            "beta": METHOD_BETA[method]}


def checked_weights(method: str, weights: Mapping[str, Any] | None,
                    where: str = "kd.weights",
                    convention: str = DEFAULT_CONVENTION) -> dict[str, float]:
    """``method``'s default weights (under ``convention``) updated by ``weights``; every key and
    value checked."""
    merged = {}
    defaults = default_weights(method, where, convention)
    for key, value in merge_options(defaults, weights, where).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise CgankdInputError(f"{where}.{key} must be a number >= 0, got {value!r}")
        merged[key] = float(value)
    if merged["alpha"] > 0 and method == NO_KD:
        raise CgankdInputError(f"{where}.alpha > 0 distils; use method {VANILLA_KD!r} "
                               f"instead of {NO_KD!r}")
    if merged["beta"] > 0 and method in (NO_KD, VANILLA_KD):
        raise CgankdInputError(f"{where}.beta has no term for method {method!r}; "
                               "vanilla KD is weighted by alpha")
    return merged


def check_kd_section(kd: Mapping[str, Any], where: str = "kd") -> None:
    """``kd.convention``, ``kd.weights`` ({method: {gamma, alpha, beta}}) and ``kd.options``
    ({term: {key: value}})."""
    convention = check_convention(kd.get("convention", DEFAULT_CONVENTION), f"{where}.convention")
    for method, weights in (kd.get("weights") or {}).items():
        at = f"{where}.weights.{method}"
        if method != NO_KD:
            check_known(method, KD_TERMS, "KD method", f"{where}.weights")
        if not isinstance(weights, Mapping):
            raise CgankdInputError(f"{at}: must be a mapping such as {{alpha: 0.5}}, got "
                                   f"{weights!r}")
        checked_weights(method, weights, at, convention)
    for term, options in (kd.get("options") or {}).items():
        check_known(term, KD_TERMS, "KD loss", f"{where}.options")
        if not isinstance(options, Mapping):
            raise CgankdInputError(f"{where}.options.{term}: must be a mapping of options, got "
                                   f"{options!r}")
        merge_options(dict.fromkeys(KD_TERMS[term][1]), options, f"{where}.options.{term}")
        if term == "crd" and "negatives" in options:
            require_choice(options["negatives"], CRD_NEGATIVES, f"{where}.options.crd.negatives")
