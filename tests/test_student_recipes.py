"""Per-variant-family student recipes (students.recipes.real / .fakes): the published v3 runs
train baselines and fine-tunes on real + fakes with different learning rates, batches and
epochs. Checked on the jobs the workflow plans, as Snakemake hands them to the adapters."""

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("debug_job", REPO / "tools" / "debug_job.py")
debug_job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debug_job)

RES = "results/digits"
OVERLAY = {"base": str(REPO / "config" / "config.yaml"),
           "students": {"recipes": {"real": {"lr": 0.05, "batch_size": 64},
                                    "fakes": {"lr": 0.01, "batch_size": 128,
                                              "budget": "epochs", "epochs": 240,
                                              "milestones": [0.625, 0.75, 0.875]}}},
           "fake": {"ladder": True}}


def _params(tmp_path: Path, target: str, overlay=OVERLAY):
    config = tmp_path / "overlay.yaml"
    config.write_text(yaml.safe_dump(overlay))
    found = debug_job.find_job(target, REPO / "Snakefile", tmp_path, [config], cores=1)
    return found.snakemake.params


@pytest.mark.parametrize("target, family", [
    (f"{RES}/students/cnn2/real/none/seed0/model.pt", "real"),
    (f"{RES}/students/cnn2/real/kd/seed1/model.pt", "real"),
    (f"{RES}/students/cnn2/filtered/none/seed0/model.pt", "fakes"),
    (f"{RES}/students/cnn2/unprocessed/none/seed2/model.pt", "fakes"),
    (f"{RES}/quality/cas/filtered/seed0/model.pt", "real"),  # trained as its reference, NOKD
])
def test_each_job_gets_its_familys_recipe(tmp_path, target, family):
    recipe = _params(tmp_path, target).recipe
    students = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["students"]
    own = students.get("recipes", {}).get(family, {})  # the default's, under the overlay's
    assert recipe == {**students["recipe"], **own, **OVERLAY["students"]["recipes"][family]}


def test_convergence_runs_train_the_real_familys_recipe_at_twice_its_budget(tmp_path):
    spec = _params(tmp_path, f"{RES}/convergence/cnn2/seed0/model.pt").spec
    assert spec["recipe"]["lr"] == 0.05 and spec["recipe"]["batch_size"] == 64


def test_a_bad_family_key_fails_the_plan_naming_it(tmp_path):
    bad = {**OVERLAY, "students": {"recipes": {"fakes": {"lrr": 0.01}}}}
    with pytest.raises(debug_job.DebugJobError, match=r"students\.recipes\.fakes\.lrr"):
        _params(tmp_path, f"{RES}/students/cnn2/real/none/seed0/model.pt", bad)
    worse = {**OVERLAY, "students": {"recipes": {"finetune": {"lr": 0.01}}}}
    with pytest.raises(debug_job.DebugJobError, match=r"finetune"):
        _params(tmp_path, f"{RES}/students/cnn2/real/none/seed0/model.pt", worse)


def test_cifar100_v3_baselines_and_fine_tunes_train_the_published_recipes():
    from cgankd.config_files import load_config_file
    from cgankd.stage_options.recipe import checked_recipe
    students = load_config_file(REPO / "config/experiments/cifar100_v3.yaml")["students"]
    real = checked_recipe({**students["recipe"], **students["recipes"].get("real", {})}, "r")
    fakes = checked_recipe({**students["recipe"], **students["recipes"]["fakes"]}, "f")
    assert (real["budget"], real["batch_size"], real["lr"]) == ("steps", 64, 0.01)
    assert real["steps"] == 240 * -(-45_000 // 64)  # 240 epochs of 704 batches (45,000 real)
    assert (fakes["budget"], fakes["epochs"], fakes["batch_size"], fakes["lr"]) == (
        "epochs", 240, 128, 0.01)
    assert [round(m * 240) for m in fakes["milestones"]] == [150, 180, 210]
    # resnet20's baseline alone trains at 0.05 (its own recipes.real); its fine-tune at 0.01
    assert students["nets"]["resnet20"]["recipes"] == {"real": {"lr": 0.05}}
    assert "recipes" not in students["nets"]["mobilenetv2"]


NET_OVERLAY = {**OVERLAY, "students": {**OVERLAY["students"], "nets": {
    "cnn2": {"net": "cnn", "kwargs": {"width": 2, "blocks": 3},
             "recipes": {"real": {"lr": 0.02}, "fakes": {"batch_size": 32}}},
    "cnn4": {"net": "cnn", "kwargs": {"width": 4, "blocks": 3}}}}}


@pytest.mark.parametrize("target, lr, batch_size", [
    (f"{RES}/students/cnn2/real/none/seed0/model.pt", 0.02, 64),
    (f"{RES}/students/cnn2/filtered/kd/seed0/model.pt", 0.01, 32),
    (f"{RES}/students/cnn4/real/none/seed0/model.pt", 0.05, 64),  # the family's own
    (f"{RES}/students/cnn4/filtered/none/seed0/model.pt", 0.01, 128),
    (f"{RES}/quality/cas/filtered/seed0/model.pt", 0.02, 64),  # cnn2, first: as its NOKD
])
def test_a_nets_own_recipes_override_its_familys_for_that_net_alone(tmp_path, target, lr,
                                                                    batch_size):
    recipe = _params(tmp_path, target, NET_OVERLAY).recipe
    assert (recipe["lr"], recipe["batch_size"]) == (lr, batch_size)


def test_a_nets_convergence_runs_train_its_own_real_recipe(tmp_path):
    spec = _params(tmp_path, f"{RES}/convergence/cnn2/seed0/model.pt", NET_OVERLAY).spec
    assert spec["recipe"]["lr"] == 0.02


def test_a_bad_key_in_a_nets_recipes_fails_the_plan_naming_it(tmp_path):
    bad = {**NET_OVERLAY, "students": {**NET_OVERLAY["students"], "nets": {
        "cnn2": {"net": "cnn", "recipes": {"real": {"lrr": 0.02}}}}}}
    with pytest.raises(debug_job.DebugJobError, match=r"students\.nets\.cnn2\.recipes\.real\.lrr"):
        _params(tmp_path, f"{RES}/students/cnn2/real/none/seed0/model.pt", bad)
