"""Snakemake adapter: the import_teacher rule -> cgankd.stages.import_teacher."""

from cgankd.jobs import stage_job
from cgankd.stages import import_teacher

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    import_teacher.run(weights=sm.input.weights, train=sm.input.train, val=sm.input.val,
                       model=sm.output.model, history=sm.output.history, net=sm.params.net,
                       device=sm.params.device, source_hash=sm.params.source_hash)
