"""tools/debug_job.py: one Snakemake job run in the foreground, as Snakemake would run it.

A toy Snakefile checks what the adapter receives (the job's own input, output, params, log,
wildcards, threads, resources, config, rule) and the post-mortem debugger; the tiny pipeline
checks that a real job's output equals what Snakemake itself wrote, and the one-line errors.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from test_workflow_pipeline import TINY, snakemake

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "debug_job.py"

TOY_SNAKEFILE = """
rule show:
    input:
        data="in_{name}.txt",
    output:
        report="out/{name}.json",
    params:
        shout=lambda wc: wc.name.upper(),
        mode=config["mode"],
    log:
        "logs/show_{name}.log",
    threads: 2
    resources:
        mem_mb=123,
    script:
        "scripts/show.py"
"""

# Reads the object the way workflow_scripts/*.py do: attributes, [0], .get, .items, .keys.
TOY_SCRIPT = """
import json
from cgankd.jobs import stage_job

sm = snakemake
with stage_job(sm.log[0], sm.threads):
    seen = {"input": dict(sm.input.items()), "data": sm.input.data,
            "missing_input": sm.input.get("nothing"), "input_keys": list(sm.input.keys()),
            "output": sm.output.report, "shout": sm.params.shout,
            "mode": sm.params.get("mode"), "log": sm.log[0], "threads": sm.threads,
            "mem_mb": sm.resources.get("mem_mb"), "gpu": sm.resources.get("gpu", 1),
            "name": sm.wildcards.name, "config": sm.config, "rule": sm.rule}
    if sm.params.mode == "boom":
        secret = 6 * 7
        raise ValueError("boom")
    with open(sm.output.report, "w") as f:
        json.dump(seen, f)
"""


def debug_job(workdir: Path, *args: str, stdin: str | None = None):
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=workdir, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "show.py").write_text(TOY_SCRIPT)
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    (tmp_path / "in_abc.txt").write_text("x")
    (tmp_path / "ok.yaml").write_text("mode: fine\n")
    (tmp_path / "boom.yaml").write_text("mode: boom\n")
    return tmp_path


def test_the_script_sees_the_jobs_own_snakemake_object(toy):
    result = debug_job(toy, "out/abc.json", "-s", "Snakefile", "--configfile", "ok.yaml",
                       "--cores", "1")
    assert result.returncode == 0, result.stderr
    seen = json.loads((toy / "out" / "abc.json").read_text())
    assert seen == {"input": {"data": "in_abc.txt"}, "data": "in_abc.txt",
                    "missing_input": None, "input_keys": ["data"],
                    "output": "out/abc.json", "shout": "ABC", "mode": "fine",
                    "log": "logs/show_abc.log", "threads": 1,  # the rule's 2, capped by --cores
                    "mem_mb": 123, "gpu": 1, "name": "abc", "config": {"mode": "fine"},
                    "rule": "show"}
    assert "rule show {'name': 'abc'}" in result.stderr


def test_pdb_opens_at_the_exception_with_its_locals(toy):
    result = debug_job(toy, "out/abc.json", "-s", "Snakefile", "--configfile", "boom.yaml",
                       "--pdb", stdin="p secret * 10\nq\n")
    assert "420" in result.stdout  # evaluated in the raising frame
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("cgankd: error: ValueError: boom")
    assert "ValueError: boom" in (toy / "logs" / "show_abc.log").read_text()


def test_an_input_no_rule_makes_fails_in_one_line(toy):
    result = debug_job(toy, "out/xyz.json", "-s", "Snakefile", "--configfile", "ok.yaml")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("debug_job: error: Missing input files for rule show")
    assert "in_xyz.txt" in result.stderr
    assert not (toy / "out").exists()


# ------------------------------------------------------------------ the real pipeline


def read_h5(path: Path) -> dict:
    """Every dataset and the root attributes, minus /provenance (time, host: varies by run)."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and not name.startswith("provenance")
                     else None)
        found["attrs"] = {k: str(v) for k, v in f.attrs.items()}
    return found


@pytest.mark.slow
def test_prepare_data_through_debug_job_equals_snakemakes_own(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    by_snakemake, by_tool = tmp_path / "snakemake", tmp_path / "tool"
    by_snakemake.mkdir(), by_tool.mkdir()
    run = snakemake(by_snakemake, "--until", "prepare_data", config=config)
    assert run.returncode == 0, run.stderr[-3000:]

    # Before the data exist, a teacher job names them and how to make them, in one line.
    result = debug_job(by_tool, "results/tiny/teacher/model.pt", "--configfile", str(config))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "rule train_teacher needs missing inputs results/tiny/data/train.h5" in result.stderr
    assert f"--configfile {config} -- results/tiny/data/train.h5" in result.stderr

    result = debug_job(by_tool, "results/tiny/data/val.h5", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    for split in ("train", "val", "test"):
        ours = read_h5(by_tool / "results" / "tiny" / "data" / f"{split}.h5")
        theirs = read_h5(by_snakemake / "results" / "tiny" / "data" / f"{split}.h5")
        assert ours.keys() == theirs.keys() and {"images", "labels", "index"} <= ours.keys()
        for key in ours:
            if key == "attrs":
                assert ours[key] == theirs[key]
            else:
                np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert (by_tool / "results" / "tiny" / "logs" / "prepare_data.log").read_text() == \
        (by_snakemake / "results" / "tiny" / "logs" / "prepare_data.log").read_text()
    assert not (by_tool / ".snakemake" / "locks").exists() or \
        not any((by_tool / ".snakemake" / "locks").iterdir())

    result = debug_job(by_tool, "results/tiny/no_such.h5", "--configfile", str(config))
    assert result.returncode == 1
    assert result.stderr == (f"debug_job: error: results/tiny/no_such.h5: no rule of "
                             f"{REPO / 'Snakefile'} makes this path\n")
