"""Snakemake adapter: the prepare_data rule -> cgankd.stages.prepare_data."""

from cgankd.jobs import stage_job
from cgankd.stages import prepare_data

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    counts = prepare_data.run(data=sm.params.data, outputs=dict(sm.output.items()),
                              source_hash=sm.params.source_hash)
    print(f"wrote {counts}")
