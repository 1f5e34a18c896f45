"""Snakemake adapter: the train_cgan rule -> cgankd.stages.train_cgan (torchrun on several GPUs)."""

from pathlib import Path

from cgankd.jobs import stage_job
from cgankd.launch import run_stage
from cgankd.stages import train_cgan

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    run_stage(train_cgan.run, dict(
        train=sm.input.train, options=sm.params.options,
        out_dir=str(Path(sm.output.generator).parent), device=sm.params.device,
        seed=sm.params.seed, threads=sm.threads, accel=sm.params.accel),
        gpus=sm.resources.get("gpu", 1), threads=sm.threads)
