"""Snakemake adapter: the fake_quality rule -> cgankd.stages.fake_quality."""

from cgankd.jobs import stage_job
from cgankd.stages import fake_quality

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    fake_quality.run(sm.output.quality, sm.input.metric_net, sm.input.real, sm.input.fakes,
                     reference_h5=sm.input.reference, device=sm.params.device,
                     **sm.params.options)
