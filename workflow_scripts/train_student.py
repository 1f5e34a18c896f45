"""Snakemake adapter: the train_student rule -> cgankd.stages.train_student."""

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.stages import train_student

sm = snakemake  # noqa: F821 (injected by Snakemake)
w = sm.wildcards
with stage_job(sm.log[0], sm.threads):
    run_stage(train_student.run, dict(
        train_h5=sm.input.train, val_h5=sm.input.val,
        out_model=sm.output.model, out_log=sm.output.history, net_cfg=sm.params.net,
        recipe=sm.params.recipe, seed=int(w.seed), device=sm.params.device,
        kd_method=w.method, kd_cfg=sm.params.kd, teacher_model=sm.input.get("teacher"),
        extra_train_h5=[sm.input.fakes] if "fakes" in sm.input.keys() else [],
        init_model=sm.input.get("init"), source_hash=sm.params.source_hash,
        identity={"student": w.student, "fakes": w.fakes, "variant": sm.params.label},
        accel=sm.params.accel),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
