"""Snakemake adapter: the select_rho rule -> cgankd.stages.select_rho."""

from cgankd.jobs import stage_job
from cgankd.stages import select_rho

sm = snakemake  # noqa: F821 (injected by Snakemake)
i, p = sm.input, sm.params
with stage_job(sm.log[0], sm.threads):
    chosen = select_rho.run(
        pool=i.pool, teacher=i.teacher, train=i.train, val=i.val,
        selection=sm.output.selection, curve=sm.output.curve, options=p.options,
        select=p.select, student=p.student, net=p.net, recipe=p.recipe,
        fake_count=p.fake_count, seed=p.seed, device=p.device, accel=p.accel,
        source_hash=p.source_hash)["chosen_rho"]
    print(f"select_rho: chosen rho {chosen}")
