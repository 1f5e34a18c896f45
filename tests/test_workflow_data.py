"""The prepare_data stage through the Snakemake CLI: outputs, reruns, lint, and user errors."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, make_data_cfg

from cgankd.h5io import read_split
from cgankd.provenance import config_hash
from cgankd.rerun_hash import stage_source_hash

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted((REPO / "config" / "experiments").glob("*.yaml"))
SPLITS = ("train", "val", "test")


def snakemake(workdir: Path, *args: str, target: str | None = None
              ) -> subprocess.CompletedProcess:
    """Run the repo's Snakefile in ``workdir``; stdout and stderr together in ``.stdout``.

    Runs name the target ``prepare_data``: the default target trains and evaluates too. The
    target goes first: ``--configfile`` takes every word after it.
    """
    cmd = [sys.executable, "-m", "snakemake", *([target] if target else []),
           "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1", *args]
    return subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300)


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def assert_ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def data_files(workdir: Path, experiment: str) -> dict[str, Path]:
    return {s: workdir / "results" / experiment / "data" / f"{s}.h5" for s in SPLITS}


DIGITS = {"experiment": "wf_digits",
          "data": {"dataset": "digits", "resolution": 16, "seed": 0, "test_fraction": 0.6,
                   "val_per_class": 10, "train_per_class": 20}}


def test_digits_run_then_nothing_to_do_then_param_change_reruns(tmp_path):
    cfg = write_config(tmp_path / "digits.yaml", DIGITS)
    assert_ok(snakemake(tmp_path, "--configfile", str(cfg), target="prepare_data"))
    files = data_files(tmp_path, "wf_digits")
    expected_hash = config_hash(make_data_cfg(**DIGITS["data"]))  # schema defaults filled
    sizes = {}
    for name, path in files.items():
        split = read_split(path)
        sizes[name] = len(split)
        a = split.attrs
        assert a["split"] == name and a["task"] == "classification" and a["dataset"] == "digits"
        assert a["num_classes"] == 10 and a["resolution"] == 16 and a["channels"] == 1
        assert a["num_samples"] == len(split) and a["seed"] == 0
        assert a["config_hash"] == expected_hash
        assert a["source_hash"] == stage_source_hash("prepare_data")
        assert split.images.shape[1:] == (1, 16, 16)
    assert sizes["train"] == 200 and sizes["val"] == 100 and sizes["test"] > 1000
    log = tmp_path / "results" / "wf_digits" / "logs" / "prepare_data.log"
    assert "wrote" in log.read_text()

    out = assert_ok(snakemake(tmp_path, "--configfile", str(cfg), "-n", target="prepare_data"))
    assert "Nothing to be done" in out

    write_config(cfg, {**DIGITS, "data": {**DIGITS["data"], "train_per_class": 15}})
    out = assert_ok(snakemake(tmp_path, "--configfile", str(cfg), "-n", target="prepare_data"))
    assert "prepare_data" in out and "Nothing to be done" not in out
    assert "params" in out.lower()  # the reason: the data section is a param


def test_digits_angle_run(tmp_path):
    cfg = write_config(tmp_path / "angle.yaml", {
        "experiment": "wf_angle",
        "data": {"dataset": "digits_angle", "resolution": 16,
                 "options": {"n_train_angles": 5, "images_per_angle": 4, "val_per_angle": 1,
                             "n_test": 40}}})
    assert_ok(snakemake(tmp_path, "--configfile", str(cfg), target="prepare_data"))
    counts = {}
    for name, path in data_files(tmp_path, "wf_angle").items():
        split = read_split(path)
        counts[name] = len(split)
        a = split.attrs
        assert a["task"] == "regression" and a["label_unit"] == "degrees"
        assert (a["label_min"], a["label_max"]) == (0.0, 90.0)
        assert 0.0 <= a["observed_min"] <= a["observed_max"] < 90.0
    assert counts == {"train": 20, "val": 5, "test": 40}


def test_lint_passes(tmp_path):
    out = assert_ok(snakemake(tmp_path, "--lint"))
    assert "good condition" in out


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_plans_prepare_data(path, tmp_path):
    out = assert_ok(snakemake(tmp_path, "--configfile", str(path), "-n"))
    assert "prepare_data" in out
    assert f"results/{path.stem}/data/train.h5" in out


def test_config_typo_fails_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "typo.yaml", {"experiment": "typo",
                                                "data": {"dataset": "digits", "resolutoin": 16}})
    result = snakemake(tmp_path, "--configfile", str(cfg), "-n")
    assert result.returncode != 0
    assert "config key data.resolutoin: unknown key" in result.stdout


def test_bad_data_root_fails_with_one_error_line_and_no_files(tmp_path):
    cfg = write_config(tmp_path / "bad.yaml", {"experiment": "bad_root",
                                               "data": {"dataset": "rc49",
                                                        "root": "missing/RC-49_64x64_25.h5"}})
    result = snakemake(tmp_path, "--configfile", str(cfg), target="prepare_data")
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("cgankd: error:")]
    assert errors, result.stdout[-4000:]
    assert "data.root" in errors[0] and "missing/RC-49_64x64_25.h5" in errors[0]
    assert "Traceback" not in result.stdout
    data_dir = tmp_path / "results" / "bad_root" / "data"
    assert not data_dir.exists() or list(data_dir.iterdir()) == []
    log = tmp_path / "results" / "bad_root" / "logs" / "prepare_data.log"
    assert errors[0] in log.read_text()
