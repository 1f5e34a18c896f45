"""What the workflow plans for the fake chains and the convergence check (dry runs), and the
longer budget the convergence runs train with."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_workflow_pipeline import REPO, TINY

from cgankd.errors import CgankdInputError
from cgankd.train.budget import scaled_budget
from cgankd.train.recipe import RECIPE_DEFAULTS


def test_scaled_budget_multiplies_the_key_the_budget_protocol_reads():
    assert scaled_budget({}, 2, "teacher.recipe")["steps"] == 2 * RECIPE_DEFAULTS["steps"]
    assert scaled_budget({"steps": 1000, "lr": 0.1}, 1.5, "w")["steps"] == 1500
    epochs = scaled_budget({"budget": "epochs", "epochs": 30, "steps": 7}, 2, "w")
    assert epochs["epochs"] == 60 and epochs["steps"] == 7  # steps unused under epochs
    scaled = scaled_budget({"steps": 8, "selection": "last"}, 2, "w")
    assert scaled == {**RECIPE_DEFAULTS, "selection": "last", "steps": 16}  # nothing else


def test_scaled_budget_errors_name_the_key():
    with pytest.raises(CgankdInputError, match=r"^students\.recipe\.epochs: the budget must "):
        scaled_budget({"budget": "epochs"}, 2, "students.recipe")  # epochs left at None
    with pytest.raises(CgankdInputError, match=r"students\.recipe\.stepz"):
        scaled_budget({"stepz": 3}, 2, "students.recipe")


def plan(tmp_path: Path, cfg: dict) -> str:
    """The dry run's output for ``cfg`` (nothing has run in ``tmp_path``)."""
    config = tmp_path / "plan.yaml"
    config.write_text(yaml.safe_dump(cfg))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "-d", str(tmp_path), "--cores", "1", "-n", "--configfile",
                             str(config)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def job_counts(out: str) -> dict[str, int]:
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def jobs_of(out: str, rule: str) -> list[str]:
    """The dry run's text block of every job of ``rule``."""
    return [block for block in re.split(r"\n(?=rule \w+:)", out)
            if block.startswith(f"rule {rule}:")]


def convergence_evaluations(out: str) -> list[str]:
    return [b for b in jobs_of(out, "evaluate") if re.search(r"wildcards: model=convergence/", b)]


def with_(cfg: dict, section: str, **values) -> dict:
    return {**cfg, section: {**cfg.get(section, {}), **values}}


@pytest.mark.slow  # Snakemake planning
def test_each_student_seed_trains_on_its_fake_chain(tmp_path):
    cfg = with_(with_(TINY, "students", seeds=[0, 1, 2]), "fake", seeds=[0, 5])
    out = plan(tmp_path, cfg)
    jobs = job_counts(out)
    assert jobs["subsample"] == 2 * 2 and jobs["filter_relabel"] == 4 * 2  # samplers/rungs x 2
    assert jobs["fake_quality"] == 4  # the first chain only
    for block in jobs_of(out, "train_student"):
        seed = int(re.search(r"seed=(\d+)", block)[1])
        fakes = re.findall(r"results/tiny/fake/chain(\d+)/\w+\.h5", block.split("output:")[0])
        if "fakes=real" in block:
            assert fakes == []
        else:  # seeds[i] -> fake.seeds[i % 2]
            assert fakes == [{0: "0", 1: "5", 2: "0"}[seed]], block
    for block in jobs_of(out, "fake_quality"):
        assert "results/tiny/fake/chain0/" in block and "chain5" not in block


@pytest.mark.slow  # Snakemake planning
def test_defaults_plan_one_chain_and_the_convergence_runs(tmp_path):
    out = plan(tmp_path, with_(with_(TINY, "students", seeds=[0, 1]), "fake", seeds=[0]))
    jobs = job_counts(out)
    assert jobs["subsample"] == 2 and jobs["filter_relabel"] == 4
    assert jobs["train_convergence"] == 1 + 2  # the teacher, NOKD of cnn2 for each seed
    assert len(convergence_evaluations(out)) == 3  # each convergence run is tested too
    aggregate = jobs_of(out, "aggregate")[0]
    assert "results/tiny/convergence/cnn2/seed1/test_metrics.json" in aggregate
    assert "results/tiny/convergence.json" in aggregate.split("output:")[1]
    off = plan(tmp_path, with_(TINY, "convergence", enabled=False))
    assert "train_convergence" not in job_counts(off) and convergence_evaluations(off) == []
    assert "convergence.json" not in jobs_of(off, "aggregate")[0]


@pytest.mark.slow  # Snakemake planning
def test_without_the_ladder_quality_and_cas_still_cover_every_rung_on_the_first_chain(tmp_path):
    cfg = with_(with_(TINY, "students", seeds=[0, 1]), "fake", seeds=[0, 5], ladder=False)
    out = plan(tmp_path, cfg)
    jobs = job_counts(out)
    assert jobs["fake_quality"] == 4 and jobs["train_cas"] == 4  # every rung, one CAS seed
    # chain 0 makes every rung (quality reads it); chain 5 only the final one students read
    assert jobs["filter_relabel"] == 4 + 1 and jobs["subsample"] == 2 + 1
    filtered = [b for b in jobs_of(out, "filter_relabel") if "chain5" in b.split("output:")[1]]
    assert len(filtered) == 1 and "chain5/filtered.h5" in filtered[0]
    students = {re.search(r"fakes=(\w+)", b)[1] for b in jobs_of(out, "train_student")}
    assert students == {"real", "filtered"}  # no ablation students
