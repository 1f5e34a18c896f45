"""Snakemake adapter: the train_student rule -> cgankd.stages.train_student."""

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.stages import train_student

sm = snakemake  # noqa: F821 (injected by Snakemake)
w = sm.wildcards
with stage_job(sm.log[0], sm.threads):
    run_stage(train_student.run, dict(
        train=sm.input.train, val=sm.input.val,
        model=sm.output.model, history=sm.output.history, net=sm.params.net,
        recipe=sm.params.recipe, seed=int(w.seed), device=sm.params.device,
        kd_method=w.method, kd=sm.params.kd, teacher=sm.input.get("teacher"),
        fakes=[sm.input.fakes] if "fakes" in sm.input.keys() else [],
        init=sm.input.get("init"), source_hash=sm.params.source_hash,
        identity={"student": w.student, "fakes": w.fakes, "variant": sm.params.label},
        accel=sm.params.accel),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
