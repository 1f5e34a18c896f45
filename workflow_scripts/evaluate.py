"""Snakemake adapter: the evaluate rule -> cgankd.stages.evaluate."""

from cgankd.jobs import stage_job
from cgankd.stages import evaluate

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    evaluate.run(model=sm.input.model, test=sm.input.test, metrics=sm.output.metrics,
                 device=sm.params.device)
