"""Snakemake adapter: the prepare_data rule -> cgankd.data.prepare_data."""

from cgankd.data import prepare_data
from cgankd.jobs import stage_job

with stage_job(snakemake.log[0], snakemake.threads):  # noqa: F821 (injected by Snakemake)
    counts = prepare_data(snakemake.params.data, dict(snakemake.output.items()),  # noqa: F821
                          source_hash=snakemake.params.source_hash)  # noqa: F821
    print(f"wrote {counts}")
