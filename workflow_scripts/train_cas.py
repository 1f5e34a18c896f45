"""Snakemake adapter: the train_cas rule -> cgankd.stages.train_cas."""

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.stages import train_cas

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    run_stage(train_cas.run, dict(
        train=sm.input.train, val=sm.input.val, model=sm.output.model,
        history=sm.output.history, net=sm.params.net, recipe=sm.params.recipe,
        seed=sm.params.seed, device=sm.params.device, source_hash=sm.params.source_hash,
        accel=sm.params.accel, identity=sm.params.get("identity")),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
