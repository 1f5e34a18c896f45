"""Studies: the study file, the points it plans, the stages a point takes from the base point,
the paired gains it reports, and (slow) one tiny study run end to end through Snakemake."""

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cgankd.config import load_schema
from cgankd.errors import CgankdInputError
from cgankd.stage_options import check_config
from cgankd.study.__main__ import main
from cgankd.study.collect import point_rows, write_csv
from cgankd.study.figure import plot_study
from cgankd.study.plan import Point, load_study, plan_points
from cgankd.study.runner import SCHEMA, prepare
from cgankd.study.stages import (STAGES, keep_withdrawn, same_settings, seed_results,
                                 shared_stages)
from test_workflow_pipeline import TINY as PIPELINE_TINY
from test_workflow_pipeline import planned

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schema():
    return load_schema(SCHEMA)


def _study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


# --- the study file ------------------------------------------------------------------------

def test_a_study_file_reads_into_factors_and_labelled_levels(tmp_path):
    study = load_study(_study(tmp_path, """
factors:
  count: {key: fake.count, levels: [500, 1000]}
  rho: {key: filter.options.rho, levels: [0.9, 1.0]}
  kd: {key: fake.kd_methods, levels: [[], [kd]]}
  init: {key: fake.init, levels: {fresh: scratch, tuned: finetune}}
  budget:
    levels:
      epochs: {students.recipe.budget: epochs, students.recipe.epochs: 3}
"""))
    assert study.name == "s"  # the file's stem
    labels = {f.name: [lv.label for lv in f.levels] for f in study.factors}
    assert labels == {"count": ["500", "1000"], "rho": ["0.9", "1.0"], "kd": ["none", "kd"],
                      "init": ["fresh", "tuned"], "budget": ["epochs"]}
    kd = next(f for f in study.factors if f.name == "kd")
    assert kd.levels[0].settings == {"fake.kd_methods": []}
    budget = next(f for f in study.factors if f.name == "budget")
    assert budget.key is None and budget.levels[0].settings == {
        "students.recipe.budget": "epochs", "students.recipe.epochs": 3}


@pytest.mark.parametrize("text, message", [
    ("factors: {rho: {kye: filter.options.rho, levels: [0.9]}}", "factors.rho.kye: unknown key"),
    ("factors: {rho: {key: filter.options.rho, levels: [0.9]}}\nextra: 1", "s.yaml.extra"),
    ("factors: {}", "factors: a mapping"),
    ("factors: {rho: {key: filter.options.rho, levels: [0.9, 0.9]}}", "two levels are named"),
    ("factors: {x: {key: data.seed, levels: [-1]}}", "has no plain name"),
    ("factors: {x: {levels: {a: 3}}}", "factors.x.levels.a: without key"),
    ("factors: {bad-name: {key: data.seed, levels: [1]}}", "factors.bad-name"),
])
def test_a_bad_study_file_fails_in_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(CgankdInputError, match=message) as err:
        load_study(_study(tmp_path, text))
    assert "\n" not in str(err.value)


def test_points_are_named_and_merged_without_sharing_yaml_aliases(tmp_path, schema):
    experiment = yaml.safe_load("""
experiment: ex
teacher: {recipe: &r {steps: 10}}
students: {recipe: *r}
""")
    study = load_study(_study(tmp_path, """
name: g
overrides: {fake: {ladder: false}}
factors:
  budget: {levels: {epochs: {students.recipe.budget: epochs, students.recipe.epochs: 2}}}
"""))
    base, points = plan_points(study, experiment, schema)
    assert base.experiment == "ex-g-base" and base.config["fake"]["ladder"] is False
    (point,) = points
    assert point.experiment == point.config["experiment"] == "ex-g-budget-epochs"
    assert point.config["students"]["recipe"] == {"steps": 10, "budget": "epochs", "epochs": 2}
    assert point.config["teacher"]["recipe"] == {"steps": 10}  # the alias did not carry it


def test_a_level_the_schema_rejects_names_the_factor_and_the_key(tmp_path, schema):
    study = load_study(_study(tmp_path, "factors: {c: {key: fake.cuont, levels: [5]}}"))
    with pytest.raises(CgankdInputError, match=r"factors\.c\.levels\.5: config key fake\.cuont"):
        plan_points(study, {"experiment": "ex"}, schema)


# --- which stages a point shares with the base -----------------------------------------------

def _config(**sections):
    config = {"experiment": "a", "filter": {"options": {"rho": 0.9}}, "fake": {"count": 100},
              "gan": {"options": {"iterations": 10}}}
    for section, value in sections.items():
        config[section] = {**config.get(section, {}), **value}
    return config


def _names(stages):
    return [s.name for s in stages]


def test_a_filter_change_shares_everything_upstream_and_the_real_students(schema):
    shared = _names(shared_stages(_config(), _config(filter={"options": {"rho": 0.5}}), schema))
    assert shared == ["data", "teacher", "cgan", "dre", "pools", "real_students", "convergence",
                      "metric_net", "quality_extractor"]


def test_a_gan_change_shares_only_what_does_not_read_the_generator(schema):
    shared = _names(shared_stages(_config(), _config(gan={"options": {"iterations": 5}}), schema))
    assert shared == ["data", "teacher", "real_students", "convergence", "metric_net",
                      "quality_extractor"]


def test_a_student_recipe_change_retrains_every_student(schema):
    shared = _names(shared_stages(_config(), _config(students={"recipe": {"steps": 7}}), schema))
    assert "real_students" not in shared and "fake_students" not in shared
    assert "fakes" in shared and "teacher" in shared


def test_a_data_change_shares_nothing(schema):
    assert shared_stages(_config(), _config(data={"seed": 4}), schema) == []


def test_spelling_out_a_default_is_no_change(schema):
    explicit = _config(fake={"init": "scratch"}, students={"recipe": {"budget": "steps"}})
    assert same_settings(_config(), {**explicit, "experiment": "b"}, schema)
    assert not same_settings(_config(), _config(fake={"init": "finetune"}), schema)


def test_every_config_section_is_read_by_some_stage(schema):
    """A schema section no stage lists would let a point reuse a stage that reads it."""
    listed = {read.split(".")[0] for stage in STAGES for read in stage.reads}
    assert set(schema["properties"]) - {"experiment"} <= listed


def _write(path: Path, text: str, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_seeding_links_binaries_copies_text_and_keeps_mtimes(tmp_path):
    src, dst = tmp_path / "base", tmp_path / "point"
    old = time.time() - 1000
    _write(src / "data/train.h5", "h5", old)
    _write(src / "teacher/model.pt", "pt", old + 1)
    _write(src / "teacher/test_metrics.json", "{}", old + 2)
    _write(src / "benchmarks/train_teacher.tsv", "s\n1", old + 1)
    _write(src / "cgan/generator.pt", "g", old)
    stages = [s for s in STAGES if s.name in ("data", "teacher")]
    seeded = seed_results(src, dst, stages)
    assert (seeded.linked, seeded.copied, seeded.replaced) == (2, 2, [])
    assert (dst / "data/train.h5").samefile(src / "data/train.h5")
    assert (dst / "teacher/model.pt").samefile(src / "teacher/model.pt")
    bench = dst / "benchmarks/train_teacher.tsv"  # Snakemake rewrites these in place: a copy
    assert not bench.samefile(src / "benchmarks/train_teacher.tsv")
    assert bench.stat().st_mtime_ns == (src / "benchmarks/train_teacher.tsv").stat().st_mtime_ns
    assert not (dst / "cgan").exists()  # not a shared stage
    assert seed_results(src, dst, stages).linked == 0  # already there: nothing to do


def test_seeding_replaces_a_changed_file_with_a_fresh_copy(tmp_path):
    src, dst = tmp_path / "base", tmp_path / "point"
    _write(src / "teacher/model.pt", "old", time.time() - 1000)
    stages = [s for s in STAGES if s.name == "teacher"]
    seed_results(src, dst, stages)
    rebuilt = _write(tmp_path / "new.pt", "new", time.time() - 500)
    os.replace(rebuilt, src / "teacher/model.pt")  # the base retrained: a new file
    base_mtime = (src / "teacher/model.pt").stat().st_mtime
    seeded = seed_results(src, dst, stages)
    assert seeded.replaced == [dst / "teacher/model.pt"]
    assert (dst / "teacher/model.pt").read_text() == "new"
    assert not (dst / "teacher/model.pt").samefile(src / "teacher/model.pt")
    assert (dst / "teacher/model.pt").stat().st_mtime > time.time() - 60  # reruns what follows
    assert (src / "teacher/model.pt").stat().st_mtime == base_mtime  # the base is untouched


def test_a_stage_not_current_in_the_source_is_not_taken(tmp_path):
    src, dst = tmp_path / "base", tmp_path / "point"
    _write(src / "data/train.h5", "h5")
    stale = _write(src / "teacher/model.pt", "pt")
    stages = [s for s in STAGES if s.name in ("data", "teacher")]
    seeded = seed_results(src, dst, stages, pending={stale})
    assert seeded.skipped == ["teacher"] and seeded.linked == 1
    assert not (dst / "teacher").exists()


def test_a_file_no_longer_shared_is_withdrawn_unless_rebuilt(tmp_path):
    src, dst = tmp_path / "base", tmp_path / "point"
    _write(src / "data/train.h5", "h5")
    _write(src / "teacher/model.pt", "pt")
    seed_results(src, dst, [s for s in STAGES if s.name in ("data", "teacher")])
    rebuilt = _write(tmp_path / "own.pt", "the point's own teacher")
    os.replace(rebuilt, dst / "teacher/model.pt")  # Snakemake rebuilt it in the point
    seeded = seed_results(src, dst, [])  # the config changed: nothing is shared any more
    assert seeded.withdrawn == [dst / "data/train.h5"] and not (dst / "data/train.h5").exists()
    assert (dst / "teacher/model.pt").read_text() == "the point's own teacher"
    assert (src / "data/train.h5").read_text() == "h5"  # the source keeps its file
    # listed until rebuilt (its job must be forced: its consumers look current), or forgotten
    assert seed_results(src, dst, []).withdrawn == [dst / "data/train.h5"]
    keep_withdrawn(dst, keep=[])
    assert seed_results(src, dst, []).withdrawn == []


# --- the numbers and the figure --------------------------------------------------------------

def _metrics(results: Path, run: str, key: str, value: float, seed: int = 0) -> None:
    _write(results / run / "test_metrics.json", json.dumps({key: value, "seed": seed}))


def _point(factor="rho", level="0.5", methods=("none", "kd"), kd_methods=("kd",)):
    config = {"students": {"nets": {"cnn2": {}}, "seeds": [0, 1, 2], "methods": list(methods)},
              "fake": {"final": "filtered", "kd_methods": list(kd_methods)}}
    return Point(factor, level, f"ex-s-{factor}-{level}", config, "filter.options.rho")


def test_the_gain_is_paired_over_seeds_with_a_t_interval(tmp_path):
    results = tmp_path / "ex-s-rho-0.5"
    _metrics(results, "teacher", "accuracy", 96.0)
    for seed, (nokd, kd, cgan, both) in enumerate([(90, 92, 91, 92), (91, 93, 93, 94),
                                                   (92, 94, 92, 96)]):
        for run, value in (("real/none", nokd), ("real/kd", kd), ("filtered/none", cgan),
                           ("filtered/kd", both)):
            _metrics(results, f"students/cnn2/{run}/seed{seed}", "accuracy", value, seed)
    rows = point_rows("s", _point(), results)
    assert [r["comparison"] for r in rows] == ["cGAN-KD vs NOKD", "cGAN-KD + KD vs KD"]
    cgan, both = rows
    # differences 1, 2, 0: mean 1, std 1, half-width t(0.975, 2) / sqrt(3) = 2.4841
    assert cgan["n"] == 3 and cgan["gain"] == pytest.approx(1.0)
    assert cgan["ci_low"] == pytest.approx(1 - 2.48414, abs=1e-4)
    assert cgan["ci_high"] == pytest.approx(1 + 2.48414, abs=1e-4)
    assert cgan["gap_closed_pct"] == pytest.approx(100 * 1 / (96 - 91))  # teacher - NOKD mean
    assert both["gain"] == pytest.approx(1.0) and both["baseline_mean"] == pytest.approx(93)
    write_csv(rows, tmp_path / "study.csv")
    header, first = (tmp_path / "study.csv").read_text().splitlines()[:2]
    assert header.startswith("study,factor,key,level,experiment,net,metric,comparison")
    assert first.startswith("s,rho,filter.options.rho,0.5,ex-s-rho-0.5,cnn2,accuracy,")


def test_a_lower_mae_is_a_positive_gain_and_missing_runs_count_no_seed(tmp_path):
    results = tmp_path / "r"
    for seed, (nokd, cgan) in enumerate([(5.0, 4.5), (6.0, 5.0)]):
        _metrics(results, f"students/cnn2/real/none/seed{seed}", "mae", nokd, seed)
        _metrics(results, f"students/cnn2/filtered/none/seed{seed}", "mae", cgan, seed)
    (row,) = point_rows("s", _point(methods=("none",), kd_methods=()), results)
    assert row["metric"] == "mae" and row["gain"] == pytest.approx(0.75) and row["n"] == 2
    assert math.isnan(row["teacher"]) and math.isnan(row["gap_closed_pct"])
    (row,) = point_rows("s", _point(methods=("none",), kd_methods=()), tmp_path / "empty")
    assert row["n"] == 0 and math.isnan(row["gain"])


def test_the_validation_gain_is_paired_too_and_the_test_gain_does_not_enter_it(tmp_path):
    results = tmp_path / "r"
    # test says cGAN-KD wins by 3; validation says it loses 1 point and 0.1 of loss
    for seed, (nokd, cgan) in enumerate([(90.0, 93.0), (91.0, 94.0)]):
        for run, test, val, loss in (("real/none", nokd, 96.0, 0.2),
                                     ("filtered/none", cgan, 95.0, 0.3)):
            _write(results / f"students/cnn2/{run}/seed{seed}/test_metrics.json",
                   json.dumps({"accuracy": test, "seed": seed,
                               "val": {"accuracy": val, "score": val, "loss": loss}}))
    (row,) = point_rows("s", _point(methods=("none",), kd_methods=()), results)
    assert row["gain"] == pytest.approx(3.0)
    assert row["val_gain"] == pytest.approx(-1.0) and row["val_loss_gain"] == pytest.approx(-0.1)
    assert row["val_ci_low"] == row["val_ci_high"] == pytest.approx(-1.0)  # no spread


def test_the_figure_has_a_panel_per_factor(tmp_path):
    def row(factor, level, comparison, gain, low, high):
        return {"factor": factor, "level": level, "key": "k", "net": "cnn2", "metric": "accuracy",
                "comparison": comparison, "gain": gain, "ci_low": low, "ci_high": high}
    rows = [row("base", "base", "cGAN-KD vs NOKD", 0.3, -0.5, 1.1),
            row("rho", "0.5", "cGAN-KD vs NOKD", -1.0, -2.0, 0.0),
            row("rho", "0.9", "cGAN-KD vs NOKD", 0.3, -0.5, 1.1),
            row("rho", "0.5", "cGAN-KD + KD vs KD", 0.5, math.nan, math.nan),
            row("count", "500", "cGAN-KD vs NOKD", math.nan, math.nan, math.nan)]
    plot_study(rows, tmp_path / "study.png", title="test")
    assert (tmp_path / "study.png").stat().st_size > 5000


def test_the_command_line_names_a_bad_input_in_one_line(tmp_path, capsys):
    study = _study(tmp_path, "factors: {rho: {key: filter.options.rho, levels: [0.95]}}")
    assert main([str(study), "--factor", "rhoo", "-d", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgankd study: --factor rhoo: not a factor") and "\n" not in err
    assert main([str(tmp_path / "missing.yaml")]) == 2


def test_the_summary_plans_with_the_users_snakemake_options(tmp_path, monkeypatch):
    """`-- --rerun-triggers mtime` must decide what the seeding counts as current, as it
    decides what the run rebuilds; otherwise a finished experiment whose code hash moved is
    never taken and the base point retrains everything."""
    study = _study(tmp_path, "factors: {rho: {key: filter.options.rho, levels: [0.95]}}")
    run = prepare(study, None, tmp_path, snakemake_args=("--rerun-triggers", "mtime"))
    calls = []

    def fake_snakemake(config, *args, capture=False):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "output_file\tdate\trule\tlog\tstatus\t"
                                           "plan\nresults/x.h5\t-\tr\t-\tok\tno update\n", "")

    monkeypatch.setattr(run, "snakemake", fake_snakemake)
    assert run.pending(tmp_path / "c.yaml") == set()
    assert calls == [("--summary", "--rerun-triggers", "mtime")]


STUDY_FILES = {"gain.yaml": "config/config.yaml",
               "gain_angle.yaml": "config/experiments/digits_angle.yaml"}


@pytest.mark.parametrize("study_file", sorted(STUDY_FILES))
def test_every_point_of_the_repos_studies_passes_the_plan_time_checks(study_file, tmp_path):
    """A level that the workflow would refuse to plan (e.g. a pool too small for its fake
    count at its rho) fails here, not hours into a study."""
    from snakemake.utils import validate

    assert sorted(p.name for p in (REPO / "config" / "studies").glob("*.yaml")) == \
        sorted(STUDY_FILES)
    run = prepare(REPO / "config" / "studies" / study_file, REPO / STUDY_FILES[study_file],
                  tmp_path)
    for point in [run.base, *run.points]:
        config = json.loads(json.dumps(point.config))
        validate(config, str(SCHEMA))
        try:
            check_config(config)
        except CgankdInputError as err:
            raise AssertionError(f"{point.experiment}: {err}") from None


# --- one tiny study through Snakemake --------------------------------------------------------

# tests/test_workflow_pipeline.py's tiny pipeline: two student seeds, no KD (time), one fake
# chain, and neither quality nor the convergence runs
TINY = {**PIPELINE_TINY,
        "students": {**PIPELINE_TINY["students"], "methods": ["none"], "seeds": [0, 1]},
        "fake": {"count": 30, "kd_methods": [], "ladder": False},
        "quality": {"enabled": False},
        "convergence": {"enabled": False}}
TINY_STUDY = """
name: s
overrides: {fake: {ladder: false}, quality: {enabled: false}, convergence: {enabled: false}}
factors:
  rho: {key: filter.options.rho, levels: [0.5]}
  kd_on_fakes: {key: fake.kd_methods, levels: [[]]}  # the base's own setting
  gan_iterations: {key: gan.options.iterations, levels: [2]}
"""


def _cli(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cgankd.study", str(work / "study.yaml"), "--configfile",
           str(work / "tiny.yaml"), "--cores", "2", "-d", str(work), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def _planned(work: Path, point: str) -> dict[str, int]:
    """{rule: job count} a dry run of one point plans ({} when nothing is due)."""
    config = work / "results" / "tiny-s" / "configs" / f"{point}.yaml"
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                             "-d", str(work), "--cores", "1", "-n", "--configfile", str(config)],
                            capture_output=True, text=True, timeout=300)
    return planned(result)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The tiny experiment run by itself, then the study's rho and kd_on_fakes points."""
    work = tmp_path_factory.mktemp("study")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (work / "study.yaml").write_text(TINY_STUDY)
    experiment = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
         "--cores", "2", "--configfile", str(work / "tiny.yaml")],
        capture_output=True, text=True, timeout=900)
    assert experiment.returncode == 0, experiment.stdout[-4000:] + experiment.stderr[-4000:]
    _cli(work, "--factor", "rho", "--factor", "kd_on_fakes")
    return work


@pytest.mark.slow
def test_the_base_point_takes_what_it_shares_with_the_finished_experiment(tiny_study):
    results = tiny_study / "results"
    # the overrides repeat the tiny config's own settings: the base shares every stage
    for shared in ("teacher/model.pt", "cgan/generator.pt", "fake/chain0/filtered.h5",
                   "students/cnn2/filtered/none/seed1/model.pt"):
        assert (results / "tiny-s-base" / shared).samefile(results / "tiny" / shared), shared


@pytest.mark.slow
def test_a_point_takes_the_shared_stages_and_trains_only_what_it_changes(tiny_study):
    results = tiny_study / "results"
    base, rho = results / "tiny-s-base", results / "tiny-s-rho-0.5"
    for shared in ("data/train.h5", "teacher/model.pt", "cgan/generator.pt",
                   "fake/chain0/pool_cdrrs.h5", "students/cnn2/real/none/seed1/model.pt"):
        assert (rho / shared).samefile(base / shared), shared
    assert not (rho / "fake/chain0/filtered.h5").samefile(base / "fake/chain0/filtered.h5")
    assert not (results / "tiny-s-kd_on_fakes-none").exists()  # the base point itself
    for point in ("tiny-s-base", "tiny-s-rho-0.5"):
        # the links count as up to date; only the table may be due, when another edit of
        # cgankd/report changed its code hash since the run
        assert set(_planned(tiny_study, point)) <= {"aggregate", "all"}, point


@pytest.mark.slow
def test_the_study_reports_each_points_paired_gain(tiny_study):
    folder = tiny_study / "results" / "tiny-s"
    rows = list(csv.DictReader((folder / "study.csv").open()))
    got = {(r["factor"], r["level"], r["comparison"]): r for r in rows}
    assert set(got) == {("base", "base", "cGAN-KD vs NOKD"), ("rho", "0.5", "cGAN-KD vs NOKD"),
                        ("kd_on_fakes", "none", "cGAN-KD vs NOKD")}
    assert got[("kd_on_fakes", "none", "cGAN-KD vs NOKD")]["experiment"] == "tiny-s-base"
    rho = tiny_study / "results" / "tiny-s-rho-0.5" / "students" / "cnn2"
    diffs = [json.loads((rho / f"filtered/none/seed{s}/test_metrics.json").read_text())["accuracy"]
             - json.loads((rho / f"real/none/seed{s}/test_metrics.json").read_text())["accuracy"]
             for s in (0, 1)]
    row = got[("rho", "0.5", "cGAN-KD vs NOKD")]
    assert int(row["n"]) == 2 and float(row["gain"]) == pytest.approx(sum(diffs) / 2, abs=1e-4)
    assert (folder / "study.png").stat().st_size > 5000
    assert (folder / "configs" / "tiny-s-rho-0.5.yaml").is_file()


@pytest.mark.slow
def test_a_dry_run_plans_a_gan_point_from_the_generator_on(tiny_study):
    _cli(tiny_study, "--factor", "gan_iterations", "--dry-run")
    jobs = _planned(tiny_study, "tiny-s-gan_iterations-2")
    assert {"prepare_data", "train_teacher"}.isdisjoint(jobs), jobs
    assert jobs["train_cgan"] == 1 and jobs["fit_dre"] == 1 and jobs["filter_relabel"] == 1
    assert jobs["train_student"] == 2  # cGAN-KD, 2 seeds; the NOKD students are linked
    assert not (tiny_study / "results" / "tiny-s" / "study.csv").read_text().count("gan_")


@pytest.mark.slow
def test_stages_no_longer_shared_are_withdrawn_and_their_jobs_forced(tiny_study):
    """Last in this module: it edits the experiment. With rho changed there (and not rerun),
    its fakes are not current: the base gives back those it took and plans to rebuild them."""
    config = tiny_study / "tiny.yaml"
    config.write_text(config.read_text().replace("rho: 0.9", "rho: 0.8"))
    out = _cli(tiny_study, "--factor", "rho", "--dry-run").stdout
    assert "tiny-s-base: fakes, fake_students not taken: not current in tiny" in out
    base_plan = out.split("Job stats:")[1].split("total")[0]  # the base's dry run comes first
    jobs = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", base_plan, re.M)}
    assert jobs == {"filter_relabel": 1, "train_student": 2, "evaluate": 2, "aggregate": 1,
                    "all": 1}
    assert not (tiny_study / "results" / "tiny-s-base" / "fake/chain0/filtered.h5").exists()
