"""Snakemake adapter: the subsample rule -> cgankd.stages.subsample."""

from cgankd.jobs import stage_job
from cgankd.stages import subsample

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    subsample.run(sm.input.generator, sm.input.get("dre"), sm.output.pool, sm.output.stats,
                  options=sm.params.options, seed=sm.params.seed, device=sm.params.device,
                  source_hash=sm.params.source_hash, test_h5=sm.input.get("test_labels"))
