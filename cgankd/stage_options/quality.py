"""The ``fake_quality`` stage's options (``quality.options``): defaults defined once, checked
without torch; ``cgankd.metrics.quality`` uses the same."""

from typing import Any

from cgankd.options import merge_options, require_int

PR_K = 3  # precision / recall neighbourhood size: Kynkaanniemi et al.'s recommended k
DC_K = 5  # density / coverage neighbourhood size: Naeem et al.'s recommended k

# The ``quality.options`` config keys, defined once here.
QUALITY_DEFAULTS = {
    "batch_size": 256,  # images per metric-net forward pass; does not change any result
    "min_per_class": 2,  # fewest images per class / window on each side for its FID (>= 2:
    # a covariance needs two samples); the manifold scores need max(pr_k, dc_k) + 1
    "n_windows": 10,  # regression: equal-width windows of the label range, one FID each
    "pr_k": PR_K,  # precision / recall neighbourhood size
    "dc_k": DC_K,  # density / coverage neighbourhood size
    "matched_draws": 5,  # fake subsets of the reference's size whose scores are averaged
    "matched_seed": 0,  # which subsets those are
}
_MINIMA = {"batch_size": 1, "min_per_class": 2, "n_windows": 1, "pr_k": 1, "dc_k": 1,
           "matched_draws": 1, "matched_seed": 0}


def checked_quality_options(options: dict[str, Any] | None,
                            where: str = "quality.options") -> dict[str, Any]:
    """QUALITY_DEFAULTS updated by ``options``; unknown keys and out-of-range values raise."""
    opts = merge_options(QUALITY_DEFAULTS, options, where)
    for key, low in _MINIMA.items():
        why = " (a covariance needs two samples)" if key == "min_per_class" else ""
        require_int(opts[key], f"{where}.{key}{why}", low)
    return opts
