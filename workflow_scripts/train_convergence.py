"""Snakemake adapter: train_convergence -> cgankd.train.stages.train_model at a scaled budget."""

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.train.budget import scaled_budget

sm = snakemake  # noqa: F821 (injected by Snakemake)
spec, factor = sm.params.spec, sm.params.factor
with stage_job(sm.log[0], sm.threads):
    run_stage("train_model", dict(
        role=spec["role"], train_h5=sm.input.train, val_h5=sm.input.val,
        out_model=sm.output.model, out_log=sm.output.history, net_cfg=spec["net"],
        recipe=scaled_budget(spec["recipe"], factor, spec["where"]),
        seed=spec["seed"], device=sm.params.device, source_hash=sm.params.source_hash,
        identity={**spec["identity"], "budget_factor": factor}, accel=sm.params.accel),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
