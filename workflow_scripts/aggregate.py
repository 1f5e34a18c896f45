"""Snakemake adapter: the aggregate rule -> cgankd.report.table.aggregate."""

from cgankd.jobs import stage_job
from cgankd.report.table import aggregate

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    print(aggregate(sm.input.metrics, sm.output.csv, sm.output.md).to_string())
