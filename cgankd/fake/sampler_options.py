"""Which subsample options reach which pool: now part of the ladder's one torch-free place,
``cgankd.stage_options.ladder``; re-exported here for existing imports."""

from cgankd.stage_options.ladder import CDRRS_ONLY, options_for_method  # noqa: F401
