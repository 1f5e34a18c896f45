"""Snakemake adapter: the train_convergence rule -> cgankd.stages.train_convergence."""

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.stages import train_convergence

sm = snakemake  # noqa: F821 (injected by Snakemake)
spec = sm.params.spec
with stage_job(sm.log[0], sm.threads):
    run_stage(train_convergence.run, dict(
        role=spec["role"], train=sm.input.train, val=sm.input.val,
        model=sm.output.model, history=sm.output.history, net=spec["net"],
        recipe=spec["recipe"], factor=sm.params.factor, where=spec["where"],
        seed=spec["seed"], device=sm.params.device, source_hash=sm.params.source_hash,
        identity=spec["identity"], accel=sm.params.accel),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
