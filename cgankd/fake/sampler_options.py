"""Which subsample options reach which pool: kept free of torch, so the Snakefile can import it."""

from collections.abc import Mapping
from typing import Any

# Options only the density-ratio sampler reads: plain generation (method none) ignores them,
# so the unprocessed pool's rule does not see them and does not rerun when they change.
CDRRS_ONLY = ("n_burnin", "reuse_burnin", "label_window", "zeta_mult")


def options_for_method(options: Mapping[str, Any] | None, method: str) -> dict[str, Any]:
    """The subsample options that can change a pool drawn by ``method``, with the method."""
    opts = {**(options or {}), "method": method}
    if method == "none":
        opts = {key: value for key, value in opts.items() if key not in CDRRS_ONLY}
    return opts
