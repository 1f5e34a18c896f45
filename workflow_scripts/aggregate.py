"""Snakemake adapter: the aggregate rule -> cgankd.stages.aggregate (table, chart, sheets)."""

from cgankd.jobs import stage_job
from cgankd.stages import aggregate

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    aggregate.run(metrics=sm.input.metrics, quality=sm.input.quality, fakes=sm.input.fakes,
                  rungs=sm.params.rungs, benchmarks=sm.input.benchmarks,
                  outputs=dict(sm.output.items()), convergence_base=sm.input.convergence_base,
                  convergence=sm.input.convergence, factor=sm.params.factor,
                  cas=sm.input.cas, train=sm.input.train,
                  rho_selection=sm.input.rho_selection)
