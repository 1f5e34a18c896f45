"""Snakemake adapter: the subsample rule -> cgankd.stages.subsample."""

from cgankd.jobs import stage_job
from cgankd.stages import subsample

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    subsample.run(generator=sm.input.generator, dre=sm.input.get("dre"), pool=sm.output.pool,
                  stats=sm.output.stats, options=sm.params.options, seed=sm.params.seed,
                  device=sm.params.device, source_hash=sm.params.source_hash,
                  test_labels=sm.input.get("test_labels"))
