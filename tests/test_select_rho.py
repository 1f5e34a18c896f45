"""filter.select_rho: the filter's rho chosen on validation (cgankd/stages/select_rho.py).

The stage's student runs are replaced here by a stand-in whose validation score is the share
of correctly labelled fakes it was given, so the choice is known in advance; the real
training path runs in the workflow test at the end (tiny pipeline, slow)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cgankd.config import load_schema
from cgankd.errors import CgankdInputError
from cgankd.filtering.rho_selection import choose_rho, read_chosen_rho
from cgankd.formats import POOL
from cgankd.report.rho_selection import rho_selection_markdown
from cgankd.h5io import decode_attrs, open_h5, read_split, write_h5
from cgankd.stage_options.fake import checked_select_rho
from cgankd.stage_options.plan import config_error
from cgankd.stages import select_rho
from cgankd.stages._training import train_model
from cgankd.stages.filter_relabel import run as filter_relabel
from toy_data import NUM_CLASSES, write_bar_splits

K = NUM_CLASSES
REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "config" / "schema.yaml")


def test_the_best_mean_score_wins():
    assert choose_rho({0.5: 90.0, 0.7: 95.0, 0.9: 92.0, 1.0: 80.0}) == 0.7
    assert choose_rho({0.5: -3.0, 0.9: -1.5}) == 0.9  # regression scores are -MAE


def test_equal_scores_go_to_the_larger_rho():
    assert choose_rho({0.5: 95.0, 0.7: 95.0, 0.9: 92.0}) == 0.7
    assert choose_rho({0.6: 90.0, 0.9: 90.0 + 1e-12, 1.0: 85.0}) == 0.9  # float noise is a tie
    assert choose_rho({0.6: 90.0 + 1e-6, 0.9: 90.0}) == 0.6  # a real difference is not


@pytest.mark.parametrize("section, where", [
    ({"grdi": [0.5]}, "filter.select_rho.grdi"),
    ({"grid": []}, "filter.select_rho.grid"),
    ({"grid": [0.5, 0]}, "filter.select_rho.grid[1]"),
    ({"grid": [0.5, 0.5]}, "filter.select_rho.grid"),
    ({"seeds": [0, -1]}, "filter.select_rho.seeds[1]"),
    ({"recipe": 3}, "filter.select_rho.recipe"),
    (0.7, "filter.select_rho"),
])
def test_bad_settings_name_the_key_in_one_line(section, where):
    with pytest.raises(CgankdInputError) as error:
        checked_select_rho(section)
    message = str(error.value)
    assert message.startswith(where) or f"option {where}" in message, message
    assert "\n" not in message


def test_defaults_and_off():
    assert checked_select_rho(None) is None
    chosen = checked_select_rho({"grid": [0.9, 0.5]})
    assert chosen["grid"] == [0.5, 0.9] and chosen["seeds"] == [0]
    assert chosen["recipe"] == {"selection": "last"}  # the final weights are scored


def _config(**select_rho):
    """The default config with the selection on, its pool pinned at 600 per class for 5,000
    fakes (500 per class), so the pool checks below do not move with the default's margin."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["filter"]["select_rho"] = select_rho or {}
    config["fake"]["count"] = 5000
    config["subsample"]["options"]["per_class"] = 600
    return config


@pytest.mark.parametrize("edit, where", [
    (lambda c: c["filter"]["select_rho"].update(recipe={"lrr": 0.1}),
     "filter.select_rho.recipe.lrr"),
    (lambda c: c["filter"]["select_rho"].update(gird=[0.5]), "gird"),
    (lambda c: c["fake"].update(final="subsampled"), "filter.select_rho: fake.final"),
    # 5,000 fakes over 10 classes need 500 per class; 600 per class kept at 0.5 give ~300
    (lambda c: c["filter"]["select_rho"].update(grid=[0.5, 0.9]), "filter.select_rho.grid 0.5"),
])
def test_plan_time_checks_name_the_key(edit, where):
    config = _config()
    edit(config)
    problem = config_error(config, SCHEMA)
    assert problem is not None and where in problem and "\n" not in problem, problem


def test_the_pool_check_uses_the_smallest_rho():
    # 5,000 fakes over 10 classes need 500 per class of a pool of 600 per class
    assert config_error(_config(grid=[0.9, 1.0]), SCHEMA) is None  # 600 x 0.9 = 540 kept
    problem = config_error(_config(grid=[0.8, 1.0]), SCHEMA)  # 600 x 0.8 = 480 kept
    assert problem and "filter.select_rho.grid 0.8" in problem, problem


@pytest.mark.parametrize("name, published", [
    ("cifar10_v1_10k", 0.7), ("cifar10_v1_20k", 0.6), ("cifar10_v1_50k", 0.9),
    ("rc49_v1_r5", 0.9), ("rc49_v1_r15", 0.8), ("rc49_v1_r25", 0.5)])
def test_the_v1_experiments_choose_rho_on_validation(name, published):
    """v1 chose rho on validation (CIFAR-10, RC-49): their configs do, over a grid holding
    the published choice, and the plan's pool check passes at the grid's smallest rho."""
    from cgankd.config_files import load_config_file
    from cgankd.stage_options.plan import with_schema_defaults

    config = with_schema_defaults(
        load_config_file(REPO / "config" / "experiments" / f"{name}.yaml"), SCHEMA)
    assert config_error(config, SCHEMA) is None
    select = checked_select_rho(config["filter"]["select_rho"])
    assert published in select["grid"] and 1.0 in select["grid"]
    assert config["filter"]["options"]["rho"] == published  # still the ladder's filtered rung


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Bar splits, a teacher that reads the bars, and a pool of 120 bar images of which every
    other one carries a wrong label (the true one + 1)."""
    folder = tmp_path_factory.mktemp("select_rho")
    paths = write_bar_splits(folder, "classification")
    train_model(role="teacher", train=paths["train"], val=paths["val"],
                model=folder / "teacher.pt", history=folder / "teacher.jsonl",
                net={"net": "cnn", "kwargs": {"width": 4, "blocks": 2}},
                recipe={"steps": 60, "batch_size": 16, "eval_every": 20, "crop_pad": 0,
                        "flip": False, "lr": 0.05}, seed=0, progress=False)
    rng = np.random.default_rng(1)
    n = 120
    truth = np.arange(n) % K
    images = rng.integers(0, 80, (n, 1, 8, 8), dtype=np.uint8)
    for k in range(K):
        images[truth == k, :, 2 * k + 1, :] = 240
    wrong = np.arange(n) % 2 == 1
    labels = np.where(wrong, (truth + 1) % K, truth).astype(np.int64)
    pool = folder / "pool.h5"
    write_h5(pool, {"images": images, "labels": labels, "target": labels,
                    "density_ratio": np.ones(n, np.float32), "index": np.arange(n)},
             {"task": "classification", "num_classes": K, "method": "cdrrs", "options": {},
              "seed": 0, "acceptance": {}}, kind=POOL)
    return folder, paths, pool, truth


def _stand_in(truth, calls):
    """train_model's stand-in: the validation accuracy is the share of true labels among the
    fakes it is given."""
    def train(**kwargs):
        fakes = read_split(kwargs["fakes"][0])
        calls.append({"seed": kwargs["seed"], "index": fakes.index.copy(),
                      "recipe": kwargs["recipe"]})
        accuracy = float(100.0 * np.mean(fakes.labels == truth[fakes.index]))
        return {"val": {"accuracy": accuracy, "score": accuracy, "loss": 0.0}}
    return train


def test_a_toy_where_filtering_helps_picks_the_rho_that_drops_the_wrong_labels(toy, tmp_path,
                                                                                 monkeypatch):
    folder, paths, pool, truth = toy
    calls = []
    monkeypatch.setattr(select_rho, "train_model", _stand_in(truth, calls))
    options = {"mode": "global", "relabel": False}
    out = tmp_path / "rho_selection.json"
    result = select_rho.run(pool, folder / "teacher.pt", paths["train"], paths["val"], out,
                            tmp_path / "rho_selection.png", options=options,
                            select={"grid": [1.0, 0.4, 0.8], "seeds": [0, 1]},
                            student="cnn2", net={"net": "cnn", "kwargs": {"width": 2}},
                            recipe={"steps": 4}, fake_count=40, seed=3)
    by_rho = {row["rho"]: row for row in result["per_rho"]}
    # half the pool is mislabelled: at rho 0.4 the teacher drops them all, at 1.0 none
    assert by_rho[0.4]["mean_metric"] == 100.0
    assert by_rho[1.0]["mean_metric"] < 60.0
    assert by_rho[0.8]["mean_metric"] < 100.0
    assert result["chosen_rho"] == 0.4 and read_chosen_rho(out) == 0.4
    assert [row["rho"] for row in result["per_rho"]] == [0.4, 0.8, 1.0]
    # 'loss < cutoff' keeps ceil((n - 1) rho) of n (cgankd/filtering/filter.py): 119 at 1.0
    assert {row["passed"] for row in result["per_rho"]} == {48, 96, 119}
    assert all(row["kept"] == 40 and set(row["val_metric"]) == {"0", "1"}
               for row in result["per_rho"])
    assert json.loads(out.read_text()) == result
    assert (tmp_path / "rho_selection.png").stat().st_size > 0
    line = rho_selection_markdown(result)  # table.md's line
    assert "**0.4**" in line and "0.8: 62.500" in line and "\n" not in line
    assert [c["seed"] for c in calls] == [0, 1] * 3
    assert not list(tmp_path.glob(".select_rho_*"))  # its temporary files are gone

    # the final rung's filter, given the file, keeps exactly the fakes scored at that rho
    summary = filter_relabel(pool, folder / "teacher.pt", tmp_path / "final.h5",
                             options={**options, "rho": 0.9}, fake_count=40, seed=3,
                             rho_selection=out)
    assert summary["rho"] == 0.4
    assert np.array_equal(read_split(tmp_path / "final.h5").index, calls[0]["index"])


def test_equal_scores_pick_the_larger_rho_in_the_stage(toy, tmp_path, monkeypatch):
    folder, paths, pool, truth = toy
    calls = []
    monkeypatch.setattr(select_rho, "train_model", _stand_in(truth, calls))
    result = select_rho.run(pool, folder / "teacher.pt", paths["train"], paths["val"],
                            tmp_path / "s.json", tmp_path / "s.png",
                            options={"mode": "global", "relabel": True},
                            select={"grid": [0.3, 0.4]}, student="cnn2",
                            net={"net": "cnn", "kwargs": {"width": 2}}, recipe={}, fake_count=30,
                            seed=0)
    # relabelled by a teacher that reads the bars: every kept fake is right at both rho
    assert [row["mean_metric"] for row in result["per_rho"]] == [100.0, 100.0]
    assert result["chosen_rho"] == 0.4


def test_a_selection_file_without_a_rho_is_named(tmp_path):
    bad = tmp_path / "rho_selection.json"
    bad.write_text(json.dumps({"per_rho": []}))
    with pytest.raises(CgankdInputError, match="rho_selection.json: 'chosen_rho'"):
        read_chosen_rho(bad)


@pytest.mark.slow
def test_the_tiny_pipeline_filters_its_final_rung_at_the_chosen_rho(tmp_path):
    """select_rho runs for real (tiny nets) and the final rung of every chain reads it; the
    other filtered rung keeps filter.options.rho, and changing the grid reruns only the
    selection and the final rung's filter (the dry run after it)."""
    from test_workflow_pipeline import TINY, planned, snakemake

    config = {**TINY, "experiment": "tiny_rho",
              "filter": {"options": {"rho": 0.9, "burnin": 6},
                         "select_rho": {"grid": [0.5, 1.0], "recipe": {"steps": 4}}},
              "fake": {**TINY["fake"], "seeds": [3, 4]}}
    config["students"] = {**TINY["students"], "seeds": [0, 1]}  # both chains used
    path = tmp_path / "tiny_rho.yaml"
    path.write_text(yaml.safe_dump(config))
    results = tmp_path / "results" / "tiny_rho"
    targets = [f"results/tiny_rho/fake/chain{c}/{rung}.h5"  # relative to the working dir
               for c in (3, 4) for rung in ("filtered", "relabelled")]
    run = snakemake(tmp_path, *targets, config=path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    selection = json.loads((results / "fake" / "rho_selection.json").read_text())
    chosen = selection["chosen_rho"]
    assert chosen in (0.5, 1.0) and [r["rho"] for r in selection["per_rho"]] == [0.5, 1.0]
    assert (results / "fake" / "rho_selection.png").is_file()
    for chain in (3, 4):
        with open_h5(results / "fake" / f"chain{chain}" / "filtered.h5") as f:
            assert decode_attrs(f.attrs)["summary"]["rho"] == chosen  # the final rung
        with open_h5(results / "fake" / f"chain{chain}" / "relabelled.h5") as f:
            assert decode_attrs(f.attrs)["summary"]["rho"] == 0.9  # the ladder's other rung
    config["filter"]["select_rho"]["grid"] = [0.5, 0.9]
    path.write_text(yaml.safe_dump(config))
    jobs = planned(snakemake(tmp_path, *targets, "-n", config=path))
    assert jobs == {"select_rho": 1, "filter_relabel": 2}, jobs  # the final rung's 2 chains


def test_table_md_carries_the_chosen_rho_and_the_curve(tmp_path):
    from cgankd.stages.aggregate import run as build_report
    from test_report import write_result

    metrics = [write_result(tmp_path, "teacher", role="teacher", value=97.0, variant="teacher"),
               write_result(tmp_path, "nokd", value=94.0)]
    selection = tmp_path / "rho_selection.json"
    selection.write_text(json.dumps({
        "chosen_rho": 0.7, "metric": "accuracy", "student": "cnn4", "count": 100,
        "seeds": [0, 1], "per_rho": [{"rho": r, "mean_metric": m} for r, m in
                                     ((0.5, 90.0), (0.7, 93.25), (1.0, 91.5))]}))
    out = {k: str(tmp_path / f) for k, f in (("csv", "table.csv"), ("md", "table.md"),
                                             ("chart", "variants.png"),
                                             ("sheets", "fake_samples.png"))}
    build_report(metrics=[str(p) for p in metrics], quality=[], fakes=[], rungs=[],
                 benchmarks=[], outputs=out, rho_selection=[str(selection)])
    lines = [line for line in Path(out["md"]).read_text().splitlines() if "rho" in line]
    assert lines == ["Filter rho chosen on validation: **0.7** (validation accuracy of cnn4 on "
                     "real + 100 fakes, mean of 2 seeds, by rho: 0.5: 90.000, 0.7: 93.250, "
                     "1: 91.500)."]


def test_a_study_point_takes_the_selection_only_when_its_student_settings_agree():
    """The selection trains the first student net: a study point that changes the students'
    recipe selects again, one that changes only the quality metrics takes the file."""
    from cgankd.study.stages import shared_stages

    base = _config(grid=[0.9, 1.0])
    names = [s.name for s in shared_stages(base, {**base, "students": {
        **base["students"], "recipe": {**base["students"]["recipe"], "lr": 0.01}}}, SCHEMA)]
    assert "rho_selection" not in names and "fakes" in names
    names = [s.name for s in shared_stages(base, {**base, "quality": {
        **base["quality"], "cas_seeds": [5]}}, SCHEMA)]
    assert "rho_selection" in names
