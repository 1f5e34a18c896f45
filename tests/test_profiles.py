"""The generic cluster profile, end to end: its exact submit line, with a local stand-in for qsub.

``tests/cluster/local_submit.sh`` is put on PATH as ``qsub``, so Snakemake runs the profile's
own submit command unchanged; the stand-in records each command line and runs the jobscript
here. The tiny pipeline's data and cGAN jobs must finish, and each submit line must carry the
rule's runtime as SGE's h_rt in seconds (train_cgan's 24 h: h_rt=86400, not 00:1440:00).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_workflow_pipeline import TINY

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "cluster-generic"

pytestmark = pytest.mark.slow


def test_cluster_generic_profile_runs_jobs_through_its_submit_line(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_cluster_generic")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qsub").symlink_to(REPO / "tests" / "cluster" / "local_submit.sh")
    work = tmp_path / "work"
    work.mkdir()
    config = work / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    record = tmp_path / "submitted.tsv"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "LOCAL_SUBMIT_RECORD": str(record)}
    env.pop("SNAKEMAKE_PROFILE", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
           "--profile", str(PROFILE), "--configfile", str(config), "--jobs", "1",
           "--seconds-between-status-checks", "1",  # the jobs are done when submit returns
           "--set-resources", "train_cgan:runtime=1440", "prepare_data:runtime=60",
           "--", "results/tiny/cgan/generator.pt"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:] + "".join(
        f"\n--- {p.name}:\n{p.read_text()[-2000:]}"
        for p in sorted(work.glob("results/tiny/logs/*.log")) + sorted(work.glob("cluster_logs/*")))
    assert (work / "results" / "tiny" / "cgan" / "generator.pt").is_file()
    assert (work / "results" / "tiny" / "data" / "train.h5").is_file()

    lines = {}
    for row in record.read_text().splitlines():
        line, properties = row.split("\t")
        lines[json.loads(properties)["rule"]] = line
    assert set(lines) == {"prepare_data", "train_cgan"}
    assert "-l h_rt=86400 " in lines["train_cgan"] and "00:1440:00" not in lines["train_cgan"]
    assert "-l h_rt=3600 " in lines["prepare_data"]
    assert all(line.startswith("-V -cwd -terse -pe smp ") for line in lines.values())
    assert list((work / "cluster_logs").glob("local*.out"))  # the jobs' output, as -o says
