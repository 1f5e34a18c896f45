"""Snakemake adapter: the filter_relabel rule -> cgankd.stages.filter_relabel."""

from cgankd.jobs import stage_job
from cgankd.stages import filter_relabel

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    print(filter_relabel.run(pool=sm.input.pool, teacher=sm.input.teacher,
                             fakes=sm.output.fakes, options=sm.params.options,
                             fake_count=sm.params.fake_count,
                             seed=sm.params.seed, device=sm.params.device,
                             source_hash=sm.params.source_hash,
                             rho_selection=sm.input.get("rho_selection")))
