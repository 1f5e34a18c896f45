"""A KD teacher separate from the filter teacher (kd_teacher): KD students distil from it,
filter_relabel still judges with the teacher; each is trained or imported once."""

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("debug_job", REPO / "tools" / "debug_job.py")
debug_job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debug_job)

RES = "results/digits"


def _job(tmp_path: Path, target: str, kd_teacher):
    config = tmp_path / "overlay.yaml"
    config.write_text(yaml.safe_dump({"base": str(REPO / "config" / "config.yaml"),
                                      "kd_teacher": kd_teacher}))
    return debug_job.find_job(target, REPO / "Snakefile", tmp_path, [config], cores=1).snakemake


def test_kd_students_distil_from_the_kd_teacher_and_the_filter_keeps_the_teacher(tmp_path):
    kd_teacher = {"net": "cnn", "kwargs": {"width": 16, "blocks": 3}, "seed": 3}
    kd = _job(tmp_path, f"{RES}/students/cnn2/real/kd/seed0/model.pt", kd_teacher)
    assert kd.input["teacher"] == f"{RES}/kd_teacher/model.pt"
    with_fakes = _job(tmp_path, f"{RES}/students/cnn2/filtered/kd/seed1/model.pt", kd_teacher)
    assert with_fakes.input["teacher"] == f"{RES}/kd_teacher/model.pt"
    judge = _job(tmp_path, f"{RES}/fake/chain0/filtered.h5", kd_teacher)
    assert judge.input["teacher"] == f"{RES}/teacher/model.pt"
    made = _job(tmp_path, f"{RES}/kd_teacher/model.pt", kd_teacher)
    assert made.rule == "train_teacher" and made.params.seed == 3
    assert made.params.net == {"net": "cnn", "kwargs": {"width": 16, "blocks": 3}}
    assert made.params.recipe == {}  # the recipe defaults, not the teacher's overrides
    assert made.log[0] == f"{RES}/logs/train_kd_teacher.log"


def test_a_given_kd_teacher_is_imported_while_the_teacher_trains(tmp_path):
    weights = tmp_path / "wrn_40_2.pth"
    weights.write_bytes(b"checked when the job runs")
    kd_teacher = {"net": "wrn_40_2", "weights": str(weights)}
    made = _job(tmp_path, f"{RES}/kd_teacher/model.pt", kd_teacher)
    assert made.rule == "import_teacher" and made.input["weights"] == str(weights)
    assert made.params.net == {"net": "wrn_40_2", "kwargs": {}}
    assert _job(tmp_path, f"{RES}/teacher/model.pt", kd_teacher).rule == "train_teacher"


def test_without_a_kd_teacher_the_teacher_distils(tmp_path):
    kd = _job(tmp_path, f"{RES}/students/cnn2/real/kd/seed0/model.pt", None)
    assert kd.input["teacher"] == f"{RES}/teacher/model.pt"
    with pytest.raises(debug_job.DebugJobError, match="no rule"):
        _job(tmp_path, f"{RES}/kd_teacher/model.pt", None)


def test_a_bad_kd_teacher_fails_the_plan_naming_it(tmp_path):
    with pytest.raises(debug_job.DebugJobError, match=r"kd_teacher\.net: unknown net 'wrn40'"):
        _job(tmp_path, f"{RES}/students/cnn2/real/kd/seed0/model.pt", {"net": "wrn40"})
    with pytest.raises(debug_job.DebugJobError, match=r"kd_teacher\.weights: file not found"):
        _job(tmp_path, f"{RES}/students/cnn2/real/kd/seed0/model.pt",
             {"net": "wrn_40_2", "weights": str(tmp_path / "absent.pth")})
