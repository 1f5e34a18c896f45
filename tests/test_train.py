"""The trainer: deterministic batches, augmentation, schedules, resume, model files."""

import json

import numpy as np
import pytest
import torch

from cgankd.conventions import LabelScale
from cgankd.errors import CgankdInputError
from cgankd.train.augment import random_crop, random_flip
from cgankd.train.model_file import load_model
from cgankd.train.recipe import checked_recipe, lr_lambda
from cgankd.stages._training import train_model
from cgankd.train.trainer import BatchRows, fit, score
from toy_data import bar_images, toy_objective, write_tiny_splits


def test_batch_rows_cover_each_epoch_once_and_repeat_exactly():
    rows = BatchRows(n=10, batch_size=4, seed=3)
    first_epoch = torch.cat([rows(0), rows(1), rows(2)[:2]])
    assert sorted(first_epoch.tolist()) == list(range(10))
    again = BatchRows(n=10, batch_size=4, seed=3)
    assert torch.equal(again(7), rows(7))  # a fresh sampler (a resumed run) sees the same rows
    assert not torch.equal(BatchRows(10, 4, seed=4)(0), rows(0))


def test_batch_rows_smaller_set_than_batch_gives_whole_epochs():
    rows = BatchRows(n=3, batch_size=8, seed=0)
    assert sorted(rows(0).tolist()) == [0, 1, 2]


def test_random_crop_shifts_content_and_keeps_shape():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(64))  # the pixel stays inside
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out}
    assert len(positions) > 5  # each image gets its own offset
    assert all(2 <= r <= 6 and 2 <= c <= 6 for r, c in positions)


def test_random_flip_flips_about_half():
    x = torch.arange(16.0).reshape(1, 1, 1, 16).repeat(200, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 15).sum().item()
    assert 70 < flipped < 130
    assert torch.equal(out[out[:, 0, 0, 0] == 15][0], x[0].flip(-1))


def test_lr_schedules():
    multi = lr_lambda(checked_recipe({"steps": 100, "milestones": [0.5, 0.75]}, "r"), 100)
    assert [multi(s) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = lr_lambda(checked_recipe({"steps": 100, "schedule": "cosine", "warmup_steps": 10}, "r"),
                    100)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(10) == pytest.approx(1.0) and cos(55) == pytest.approx(0.5, abs=1e-6)


def test_recipe_rejects_unknown_and_bad_values():
    with pytest.raises(CgankdInputError, match="teacher.recipe.stpes"):
        checked_recipe({"stpes": 10}, "teacher.recipe")
    with pytest.raises(CgankdInputError, match="milestones"):
        checked_recipe({"milestones": [1.5]}, "teacher.recipe")
    with pytest.raises(CgankdInputError, match="schedule"):
        checked_recipe({"schedule": "linear"}, "teacher.recipe")


def test_score_regression_in_original_units():
    scale = LabelScale(0.0, 90.0)
    out = torch.tensor([[0.5], [1.2]])  # 45 degrees, and 108 clamped to 90
    labels = torch.tensor([0.5, 0.9])  # 45 and 81 degrees
    assert score(out, labels, "regression", scale)["mae"] == pytest.approx(4.5)


RECIPE = {"steps": 30, "batch_size": 16, "lr": 0.05, "crop_pad": 1, "flip": False,
          "eval_every": 10, "checkpoint_every": 10, "milestones": [0.5]}


def test_fit_learns_and_selects_on_val(tmp_path):
    obj, net = toy_objective()
    data = bar_images()
    result = fit(obj, net, data, bar_images(seed=1), checked_recipe(RECIPE, "r"),
                 task="classification", label_scale=None, device=torch.device("cpu"), seed=0,
                 checkpoint_path=tmp_path / "ck.pt", log_path=tmp_path / "h.jsonl",
                 fingerprint="x", progress=False)
    history = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [10, 20, 30]
    assert result.best_val["accuracy"] == max(h["val"]["accuracy"] for h in history)
    assert result.best_val["accuracy"] > 60  # chance is 33 %
    assert not (tmp_path / "ck.pt").exists()  # the finished run removes its resume file


# 5 epochs of 96 images in batches of 16: the same 30 steps, resolved from the set's size.
EPOCHS_LAST = {**RECIPE, "budget": "epochs", "epochs": 5, "selection": "last"}


@pytest.mark.parametrize("overrides", [RECIPE, EPOCHS_LAST], ids=["steps-best", "epochs-last"])
def test_killed_run_resumes_to_the_same_model(tmp_path, overrides):
    recipe = checked_recipe(overrides, "r")
    kwargs = dict(task="classification", label_scale=None, device=torch.device("cpu"), seed=0,
                  fingerprint="same", progress=False)
    obj, net = toy_objective()
    whole = fit(obj, net, bar_images(), bar_images(seed=1), recipe,
                checkpoint_path=tmp_path / "a.pt", log_path=tmp_path / "a.jsonl", **kwargs)

    class Killed(Exception):
        pass

    def kill_at_25(step):
        if step == 25:
            raise Killed

    obj, net = toy_objective()
    with pytest.raises(Killed):
        fit(obj, net, bar_images(), bar_images(seed=1), recipe, checkpoint_path=tmp_path / "b.pt",
            log_path=tmp_path / "b.jsonl", on_step=kill_at_25, **kwargs)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 20
    obj, net = toy_objective(seed=99)  # a fresh process: other initial weights, same checkpoint
    resumed = fit(obj, net, bar_images(), bar_images(seed=1), recipe,
                  checkpoint_path=tmp_path / "b.pt", log_path=tmp_path / "b.jsonl", **kwargs)
    for key, value in whole.best_state.items():
        assert torch.equal(value, resumed.best_state[key]), key
    assert (tmp_path / "a.jsonl").read_text().count("step") == \
        (tmp_path / "b.jsonl").read_text().count("step")


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    recipe = checked_recipe(RECIPE, "r")
    obj, net = toy_objective()
    with pytest.raises(RuntimeError):
        fit(obj, net, bar_images(), bar_images(seed=1), recipe, task="classification",
            label_scale=None, device=torch.device("cpu"), seed=0, fingerprint="old",
            checkpoint_path=tmp_path / "c.pt", log_path=tmp_path / "c.jsonl", progress=False,
            on_step=lambda s: (_ for _ in ()).throw(RuntimeError) if s == 15 else None)
    obj, net = toy_objective()
    result = fit(obj, net, bar_images(), bar_images(seed=1), recipe, task="classification",
                 label_scale=None, device=torch.device("cpu"), seed=0, fingerprint="new",
                 checkpoint_path=tmp_path / "c.pt", log_path=tmp_path / "c.jsonl",
                 progress=False)
    assert [h["step"] for h in result.history] == [10, 20, 30]  # started from 0


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_train_model_writes_a_loadable_model_and_distils(tmp_path, task):
    paths = write_tiny_splits(tmp_path, task)
    recipe = {"steps": 6, "batch_size": 16, "eval_every": 3, "crop_pad": 0, "flip": False}
    common = dict(train=paths["train"], val=paths["val"], recipe=recipe, seed=0,
                  progress=False)
    train_model(role="teacher", model=tmp_path / "t.pt", history=tmp_path / "t.jsonl",
                net={"net": "cnn", "kwargs": {"width": 8, "blocks": 2}}, **common)
    train_model(role="student", model=tmp_path / "s.pt", history=tmp_path / "s.jsonl",
                net={"net": "cnn", "kwargs": {"width": 4, "blocks": 2}}, kd_method="kd",
                teacher=tmp_path / "t.pt", identity={"student": "tiny"}, **common)
    raw = torch.load(tmp_path / "s.pt", weights_only=True)  # plain dict, no pickled classes
    assert raw["format"] == "cgankd.model/1" and raw["kd_method"] == "kd"
    net, meta = load_model(tmp_path / "s.pt")
    assert meta["task"] == task and meta["identity"] == {"student": "tiny"}
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 3 if task == "classification" else 1)
    if task == "regression":
        assert (meta["label_min"], meta["label_max"]) == (0.0, 90.0)


def test_model_file_names_its_protocol_and_epochs_grow_with_fakes(tmp_path):
    paths = write_tiny_splits(tmp_path, "classification")
    recipe = {"budget": "epochs", "epochs": 2, "batch_size": 16, "eval_every": 100,
              "selection": "last", "crop_pad": 0, "flip": False}
    common = dict(role="student", val=paths["val"], net={"net": "cnn"}, recipe=recipe,
                  seed=0, progress=False)
    train_model(train=paths["train"], model=tmp_path / "real.pt",
                history=tmp_path / "real.jsonl", **common)
    train_model(train=paths["train"], fakes=[paths["val"]],  # 30 extra "fakes"
                model=tmp_path / "fakes.pt", history=tmp_path / "fakes.jsonl", **common)
    _, real = load_model(tmp_path / "real.pt")
    _, fakes = load_model(tmp_path / "fakes.pt")
    assert {k: real[k] for k in ("budget", "epochs", "selection", "steps", "best_step")} == \
        {"budget": "epochs", "epochs": 2, "selection": "last", "steps": 8, "best_step": 8}
    assert (fakes["train_size"], fakes["steps"], fakes["best_step"]) == (90, 12, 12)
    assert real["passes"] == pytest.approx(8 * 16 / 60, abs=1e-3)
    assert "loss" in real["val"]


def test_student_with_kd_needs_a_teacher(tmp_path):
    paths = write_tiny_splits(tmp_path, "classification")
    with pytest.raises(CgankdInputError, match="teacher"):
        train_model(role="student", train=paths["train"], val=paths["val"],
                    model=tmp_path / "s.pt", history=tmp_path / "s.jsonl",
                    net={"net": "cnn"}, recipe={"steps": 2}, seed=0, kd_method="kd")


def test_label_scale_prediction_clips_then_denormalises_tensors_and_arrays():
    scale = LabelScale(-10.0, 90.0)
    out = [[-0.2], [0.5], [1.3]]  # overshoots on both sides, as (N, 1) head outputs
    expected = [-10.0, 40.0, 90.0]
    assert scale.predicted(torch.tensor(out)).tolist() == pytest.approx(expected)
    assert scale.predicted(np.array(out)).tolist() == pytest.approx(expected)
