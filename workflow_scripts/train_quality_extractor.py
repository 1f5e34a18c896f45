"""Snakemake adapter: the train_quality_extractor rule -> cgankd.stages.train_quality_extractor."""

from cgankd.jobs import stage_job
from cgankd.stages import train_quality_extractor

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    train_quality_extractor.run(
        train=sm.input.train, val=sm.input.val, model=sm.output.model,
        history=sm.output.history, options=sm.params.options, seed=sm.params.seed,
        device=sm.params.device, accel=sm.params.accel, source_hash=sm.params.source_hash)
