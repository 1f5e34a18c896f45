"""Snakemake adapter: the train_cgan rule -> cgankd.gan.train.train_cgan."""

from pathlib import Path

from cgankd.gan.train import train_cgan
from cgankd.h5io import read_split
from cgankd.jobs import stage_job

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    train_cgan(read_split(sm.input.train), sm.params.options, Path(sm.output.generator).parent,
               device=sm.params.device, seed=sm.params.seed, threads=sm.threads)
