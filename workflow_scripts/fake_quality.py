"""Snakemake adapter: the fake_quality rule -> cgankd.stages.fake_quality."""

from cgankd.jobs import stage_job
from cgankd.stages import fake_quality

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stage_job(sm.log[0], sm.threads):
    fake_quality.run(quality=sm.output.quality, metric_net=sm.input.metric_net,
                     real=sm.input.real, fakes=sm.input.fakes, reference=sm.input.reference,
                     extractor=sm.input.get("extractor"), device=sm.params.device,
                     **sm.params.options)
