"""Snakemake adapter: the evaluate rule -> cgankd.evaluate.evaluate_model."""

from cgankd.evaluate import evaluate_model
from cgankd.jobs import stage_job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    evaluate_model(sm.input.model, sm.input.test, sm.output.metrics, device=sm.params.device)
