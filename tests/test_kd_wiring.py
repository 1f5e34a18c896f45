"""The KD settings reach the student's objective through train_model (what the student rule
calls with its ``kd`` param): the convention and CRD's training labels (exact negatives)."""

import json

import pytest

from cgankd.stages._training import train_model
from toy_data import write_tiny_splits


@pytest.mark.parametrize("convention, has_kl", [("cgankd", True), ("repdistiller", False)])
def test_train_model_passes_the_convention_and_crd_labels(tmp_path, convention, has_kl):
    write_tiny_splits(tmp_path, "classification")
    common = dict(train=tmp_path / "train.h5", val=tmp_path / "val.h5", seed=0,
                  recipe={"steps": 2, "batch_size": 16, "eval_every": 2, "crop_pad": 0,
                          "flip": False}, progress=False)
    train_model(role="teacher", model=tmp_path / "t.pt", history=tmp_path / "t.jsonl",
                net={"net": "cnn", "kwargs": {"width": 8, "blocks": 2}}, **common)
    # crd defaults to exact negatives: without the training labels this would fail
    train_model(role="student", model=tmp_path / "s.pt", history=tmp_path / "s.jsonl",
                net={"net": "cnn", "kwargs": {"width": 4, "blocks": 2}}, kd_method="crd",
                kd={"convention": convention, "weights": {},
                        "options": {"crd": {"nce_k": 10}}},
                teacher=tmp_path / "t.pt", **common)
    logged = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])["train"]
    assert "crd" in logged and ("kd" in logged) == has_kl
