"""The whole DAG end to end on a tiny config, then partial-rerun planning on the result.

Every rule runs for real (tiny nets, a few steps each); the checks are on what Snakemake plans
afterwards: nothing when nothing changed, and exactly the affected stages when one stage's
parameters or code change.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cgankd.h5io import decode_attrs, open_h5

REPO = Path(__file__).resolve().parents[1]

RECIPE = {"steps": 8, "batch_size": 16, "eval_every": 4, "crop_pad": 1, "flip": False}
TINY = {
    "experiment": "tiny",
    "data": {"dataset": "digits", "resolution": 8, "test_fraction": 0.5, "val_per_class": 3,
             "train_per_class": 6},
    "teacher": {"net": "cnn", "kwargs": {"width": 4, "blocks": 2}, "recipe": RECIPE},
    "students": {"nets": {"cnn2": {"net": "cnn", "kwargs": {"width": 2, "blocks": 2}}},
                 "methods": ["none", "kd"], "seeds": [0], "recipe": RECIPE},
    "gan": {"options": {"iterations": 4, "batch_size": 16, "g_ch": 8, "d_ch": 8, "dim_z": 8,
                        "dim_shared": 8, "checkpoint_every": 2, "sample_every": 0,
                        "ema_start": 1}},
    "dre": {"options": {"extractor_width": 4, "dr_hidden": [16, 8, 8, 8, 8], "batch_size": 32,
                        "extractor_recipe": RECIPE, "fit": {"epochs": 2}}},
    "subsample": {"options": {"per_class": 6, "n_burnin": 20, "batch_size": 20}},
    "filter": {"options": {"rho": 0.9, "burnin": 6}},
    # chain 3: its subsampling seed is subsample.seed + 3, its files under fake/chain3/
    "fake": {"count": 30, "kd_methods": ["kd"], "seeds": [3]},
    "quality": {"kwargs": {"width": 4, "blocks": 2}, "recipe": RECIPE},
    "convergence": {"factor": 2},  # the teacher and NOKD again at 16 steps
}


def snakemake(workdir: Path, *args: str, config: Path | None = None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", *args]
    if config is not None:
        cmd += ["--configfile", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def planned(result) -> dict[str, int]:
    """{rule: job count} from a dry run's job-stats table ({} when nothing is to be done)."""
    assert result.returncode == 0, result.stdout + result.stderr
    if "Nothing to be done" in result.stdout:
        return {}
    table = result.stdout.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run: working directory and config path."""
    work = tmp_path_factory.mktemp("pipeline")
    config = work / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = snakemake(work, config=config)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (work / "run_output.txt").write_text(result.stdout + result.stderr)
    return work, config


pytestmark = pytest.mark.slow


def test_every_stage_ran_and_the_table_has_every_variant(finished):
    work, _ = finished
    results = work / "results" / "tiny"
    table = (results / "table.md").read_text()
    for variant in ("teacher", "NOKD", "KD", "cGAN-KD", "cGAN-KD + KD",
                    "ablation: unprocessed fakes", "ablation: subsampled fakes",
                    "ablation: relabelled fakes"):
        assert f"| {variant} |" in table, variant
    assert "| fake set | FID | Intra-FID |" in table and "| train_cgan |" in table
    for png in ("variants.png", "fake_samples.png", "cgan/samples.png"):
        assert (results / png).stat().st_size > 1000
    metrics = json.loads((results / "students/cnn2/filtered/kd/seed0/test_metrics.json")
                         .read_text())
    assert metrics["identity"]["variant"] == "cGAN-KD + KD" and 0 <= metrics["accuracy"] <= 100
    assert metrics["train_size"] == 60 + 30  # real (6 per class) + fake.count
    row = next(line for line in table.splitlines() if line.startswith("| cnn2 | cGAN-KD + KD |"))
    assert row.split(" | ")[3] == "KD"  # the baseline column: compared with KD, not NOKD
    assert "- students: budget steps (8 steps per run); selection best" in table


def test_the_fake_chain_has_its_own_folder_and_seed(finished):
    work, _ = finished
    fake = work / "results" / "tiny" / "fake" / "chain3"
    with open_h5(fake / "pool_cdrrs.h5") as f:
        assert decode_attrs(f.attrs)["seed"] == 0 + 3  # subsample.seed + the chain
    assert sorted(p.name for p in fake.glob("*.h5")) == [
        "filtered.h5", "pool_cdrrs.h5", "pool_none.h5", "relabelled.h5", "subsampled.h5",
        "unprocessed.h5"]


def test_the_convergence_check_ran_at_twice_the_budget(finished):
    work, _ = finished
    results = work / "results" / "tiny"
    for run in ("teacher", "cnn2/seed0"):
        metrics = json.loads((results / "convergence" / run / "test_metrics.json").read_text())
        assert metrics["steps"] == 16 and metrics["identity"]["budget_factor"] == 2
    check = json.loads((results / "convergence.json").read_text())
    assert check["factor"] == 2 and set(check["students"]) == {"cnn2"}
    assert check["students"]["cnn2"]["verdict"] == "undetermined"  # one seed: no interval
    assert "| NOKD cnn2 |" in (results / "table.md").read_text()


def test_a_finished_run_says_where_the_table_is(finished):
    work, _ = finished
    assert "results table: results/tiny/table.md" in (work / "run_output.txt").read_text()


def test_nothing_changed_plans_nothing(finished):
    work, config = finished
    assert planned(snakemake(work, "-n", config=config)) == {}


def _changed(work: Path, config: Path, edit) -> dict[str, int]:
    cfg = yaml.safe_load(config.read_text())
    edit(cfg)
    changed = work / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    return planned(snakemake(work, "-n", config=changed))


def test_changing_rho_reruns_only_the_filter_and_what_follows(finished):
    work, config = finished
    jobs = _changed(work, config, lambda c: c["filter"]["options"].update(rho=0.8))
    assert "filter_relabel" in jobs and "train_student" in jobs
    for upstream in ("prepare_data", "train_teacher", "train_cgan", "fit_dre", "subsample",
                     "train_metric_net"):
        assert upstream not in jobs, jobs
    # students on real data alone and on unfiltered fakes do not depend on rho
    assert jobs["train_student"] == 3  # cGAN-KD, cGAN-KD + KD, the relabelled rung


def test_changing_a_sampler_option_leaves_the_unprocessed_pool_alone(finished):
    work, config = finished
    jobs = _changed(work, config, lambda c: c["subsample"]["options"].update(n_burnin=7))
    assert jobs.get("subsample") == 1  # the cDR-RS pool; plain generation ignores n_burnin
    assert jobs.get("filter_relabel") == 3  # subsampled, filtered, relabelled; not unprocessed
    assert "fit_dre" not in jobs and "train_cgan" not in jobs


def test_changing_gan_iterations_reruns_the_gan_and_what_follows(finished):
    work, config = finished
    jobs = _changed(work, config, lambda c: c["gan"]["options"].update(iterations=5))
    assert jobs.get("train_cgan") == 1 and "fit_dre" in jobs and "subsample" in jobs
    assert "train_teacher" not in jobs and "prepare_data" not in jobs
    assert jobs["train_student"] == 5  # every variant with fakes, none of the real-only ones


def test_another_fake_chain_reruns_the_chain_and_its_students_only(finished):
    work, config = finished
    jobs = _changed(work, config, lambda c: c["fake"].update(seeds=[4]))
    assert jobs.get("subsample") == 2 and jobs.get("filter_relabel") == 4
    assert jobs["train_student"] == 5  # every variant with fakes
    for upstream in ("train_teacher", "train_cgan", "fit_dre", "train_convergence",
                     "train_metric_net"):
        assert upstream not in jobs, jobs


def test_changing_the_convergence_factor_reruns_only_the_check(finished):
    work, config = finished
    jobs = _changed(work, config, lambda c: c["convergence"].update(factor=3))
    assert jobs == {"train_convergence": 2, "evaluate": 2, "aggregate": 1, "all": 1}


def _planned_after_editing(work: Path, config: Path, copy: Path, module: str,
                           edit: str = "\nEDITED_BY_TEST = 1\n") -> dict[str, int]:
    """Plan the finished run with a copy of the workflow whose ``cgankd/<module>`` ends in
    ``edit`` (code by default: a comment changes no source hash)."""
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "results",
                                                               ".snakemake", "__pycache__"))
    (copy / "cgankd" / module).open("a").write(edit)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "-d", str(work),
           "--cores", "1", "-n", "--configfile", str(config)]
    return planned(subprocess.run(cmd, capture_output=True, text=True, timeout=300))


def test_editing_package_code_reruns_the_stages_that_run_it(finished, tmp_path):
    work, config = finished
    jobs = _planned_after_editing(work, config, tmp_path / "repo", "filtering/filter.py")
    assert "filter_relabel" in jobs  # the one rule whose stage module imports cgankd/filtering
    # upstream rules that do not run it stay done (each rule hashes only its own import graph)
    assert not jobs.keys() & {"train_teacher", "prepare_data", "train_cgan", "fit_dre",
                              "subsample"}


def test_a_comment_in_package_code_reruns_nothing(finished, tmp_path):
    work, config = finished
    jobs = _planned_after_editing(work, config, tmp_path / "repo", "kd/crd.py", "\n# a note\n")
    assert jobs == {}


def test_editing_report_code_reruns_only_the_report(finished, tmp_path):
    work, config = finished
    jobs = _planned_after_editing(work, config, tmp_path / "repo", "report/plots.py")
    assert jobs == {"aggregate": 1, "all": 1}
