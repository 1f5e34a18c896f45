"""Snakemake adapter: the fit_dre rule -> cgankd.stages.fit_dre."""

from cgankd.jobs import stage_job
from cgankd.stages import fit_dre

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    fit_dre.run(train=sm.input.train, val=sm.input.val, generator=sm.input.generator,
                model=sm.output.model, curves=sm.output.curves, options=sm.params.options,
                seed=sm.params.seed, device=sm.params.device, accel=sm.params.accel,
                source_hash=sm.params.source_hash)
