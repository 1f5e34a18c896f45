"""The training protocol: budget ("steps" or "epochs") and checkpoint selection ("best", "last")."""

import pytest
import torch

from cgankd.conventions import LabelScale
from cgankd.errors import CgankdInputError
from cgankd.train import trainer
from cgankd.train.recipe import checked_recipe, lr_lambda, resolved_steps
from cgankd.train.tensorset import concat
from cgankd.train.trainer import fit, score, selects
from toy_data import bar_images, toy_objective

BASE = {"batch_size": 16, "lr": 0.05, "crop_pad": 1, "flip": False, "eval_every": 3,
        "checkpoint_every": 100, "milestones": [0.5]}


def _fit(tmp_path, recipe, train=None, name="run", **kwargs):
    obj, net = toy_objective()
    result = fit(obj, net, train if train is not None else bar_images(), bar_images(seed=1),
                 checked_recipe(recipe, "students.recipe"), task="classification",
                 label_scale=None, device=torch.device("cpu"), seed=0,
                 checkpoint_path=tmp_path / f"{name}.pt", log_path=tmp_path / f"{name}.jsonl",
                 fingerprint="x", progress=False, **kwargs)
    return result, net


def test_steps_budget_is_the_default_and_ignores_the_set_size():
    recipe = checked_recipe({"steps": 40}, "r")
    assert (recipe["budget"], recipe["selection"]) == ("steps", "best")
    assert resolved_steps(recipe, 96) == resolved_steps(recipe, 960) == 40


def test_epochs_budget_is_ceil_of_epochs_times_set_over_batch():
    recipe = checked_recipe({"budget": "epochs", "epochs": 3, "batch_size": 16}, "r")
    assert resolved_steps(recipe, 96) == 18  # exact: 3 * 96 / 16
    assert resolved_steps(recipe, 100) == 19  # 18.75 rounded up
    assert resolved_steps(recipe, 5) == 3  # a set smaller than a batch: one pass per step


def test_epochs_budget_milestones_are_fractions_of_the_resolved_steps():
    recipe = checked_recipe({"budget": "epochs", "epochs": 10, "batch_size": 10,
                             "milestones": [0.5]}, "r")
    steps = resolved_steps(recipe, 20)
    assert steps == 20
    factor = lr_lambda(recipe, steps)
    assert (factor(9), factor(10)) == pytest.approx((1.0, 0.1))


def test_epochs_budget_trains_longer_with_an_extra_fake_set(tmp_path):
    recipe = {**BASE, "budget": "epochs", "epochs": 1}
    real, _ = _fit(tmp_path, recipe, name="real")
    with_fakes, _ = _fit(tmp_path, recipe, train=concat([bar_images(), bar_images(seed=2)]),
                         name="fakes")
    assert (real.steps, with_fakes.steps) == (6, 12)  # 96 / 16, then 192 / 16
    assert real.history[-1]["step"] == 6 and with_fakes.history[-1]["step"] == 12


@pytest.mark.parametrize("epochs", [None, 0, 2.5, True])
def test_epochs_budget_needs_an_integer_epochs(epochs):
    with pytest.raises(CgankdInputError, match=r"^students\.recipe\.epochs: "):
        checked_recipe({"budget": "epochs", "epochs": epochs}, "students.recipe")


@pytest.mark.parametrize("key", ["budget", "selection"])
def test_unknown_budget_or_selection_names_the_key(key):
    with pytest.raises(CgankdInputError, match=rf"^teacher\.recipe\.{key}: 'sometimes'"):
        checked_recipe({key: "sometimes"}, "teacher.recipe")


def test_last_selection_returns_the_final_weights(tmp_path):
    result, net = _fit(tmp_path, {**BASE, "steps": 10, "selection": "last"})
    assert result.best_step == result.steps == 10
    assert result.best_val == result.history[-1]["val"]
    assert [h["step"] for h in result.history] == [3, 6, 9, 10]  # validation still logged
    final = net.state_dict()
    assert result.best_state.keys() == final.keys()
    for key, value in final.items():
        assert torch.equal(result.best_state[key], value), key


def _scripted_scores(monkeypatch, metrics):
    """Validation returns ``metrics`` in turn, whatever the net does."""
    queue = list(metrics)
    monkeypatch.setattr(trainer, "score", lambda *args: dict(queue.pop(0)))


def _states_by_step(net, snapshots):
    def on_step(step):
        snapshots[step] = {k: v.clone() for k, v in net.state_dict().items()}
    return on_step


def test_best_selection_takes_the_end_of_a_plateau(tmp_path, monkeypatch):
    plateau = [{"score": 90.0, "loss": 0.3}] + [{"score": 100.0, "loss": 0.2}] * 3
    _scripted_scores(monkeypatch, plateau)
    obj, net = toy_objective()
    snapshots = {}
    result = fit(obj, net, bar_images(), bar_images(seed=1), checked_recipe(
        {**BASE, "steps": 12}, "r"), task="classification", label_scale=None,
        device=torch.device("cpu"), seed=0, checkpoint_path=tmp_path / "c.pt",
        log_path=tmp_path / "h.jsonl", fingerprint="x", progress=False,
        on_step=_states_by_step(net, snapshots))
    assert result.best_step == 12  # 100 % at steps 6, 9 and 12: the later checkpoint wins
    for key, value in snapshots[12].items():
        assert torch.equal(result.best_state[key], value), key
    # The weights did move over the plateau, so matching step 12 says which one was kept.
    assert any(not torch.equal(snapshots[6][k], v) for k, v in snapshots[12].items())


def test_best_selection_breaks_score_ties_on_validation_loss(tmp_path, monkeypatch):
    _scripted_scores(monkeypatch, [{"score": 100.0, "loss": 0.5}, {"score": 100.0, "loss": 0.1},
                                   {"score": 100.0, "loss": 0.4}, {"score": 80.0, "loss": 0.05}])
    result, _ = _fit(tmp_path, {**BASE, "steps": 12})
    assert result.best_step == 6 and result.best_val["loss"] == 0.1


def test_selects_rule():
    kept = {"score": 95.0, "loss": 0.2}
    assert selects("best", {"score": 96.0, "loss": 0.9}, kept)  # the score comes first
    assert not selects("best", {"score": 94.0, "loss": 0.01}, kept)
    assert selects("best", {"score": 95.0, "loss": 0.2}, kept)  # a full tie: the later one
    assert not selects("best", {"score": 95.0, "loss": 0.3}, kept)
    assert selects("best", {"score": 95.0, "loss": 0.3}, {"score": 95.0})  # old checkpoint
    assert selects("last", {"score": 1.0, "loss": 9.0}, kept)


def test_score_reports_the_plain_training_loss():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    metrics = score(logits, labels, "classification", None)
    assert metrics["loss"] == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item())
    reg = score(torch.tensor([[0.5], [0.2]]), torch.tensor([0.4, 0.2]), "regression",
                LabelScale(0.0, 90.0))
    assert reg["loss"] == pytest.approx(0.005)  # MSE on normalised labels: 0.1**2 / 2


def test_checkpoint_of_another_step_count_is_ignored(tmp_path):
    recipe = {**BASE, "budget": "epochs", "epochs": 2, "checkpoint_every": 3}

    def kill_at_7(step):
        if step == 7:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        _fit(tmp_path, recipe, name="c", on_step=kill_at_7)  # 12 steps, checkpoint at 6
    assert torch.load(tmp_path / "c.pt", weights_only=True)["steps"] == 12
    # Same fingerprint, but a bigger training set: 24 steps, so the schedule differs.
    result, _ = _fit(tmp_path, recipe, train=concat([bar_images(), bar_images(seed=2)]),
                     name="c")
    assert result.steps == 24 and result.history[0]["step"] == 3  # started from 0


def test_real_fraction_fills_every_batch_with_that_share_of_real_rows():
    rows_of = trainer.batch_rows(n=110, batch_size=16, seed=3, real_rows=10, real_fraction=0.5)
    seen_real = set()
    for step in range(5):
        rows = rows_of(step)
        assert len(rows) == 16  # (a batch that crosses an epoch of the 10 may repeat a row)
        real = rows[rows < 10]
        assert len(real) == 8  # uniform draws would give 10 / 110 of 16, about 1.5
        seen_real.update(real.tolist())
        assert torch.equal(rows, trainer.batch_rows(110, 16, 3, 10, 0.5)(step))  # stateless
    assert seen_real == set(range(10))  # whole passes over the real rows


def test_real_fraction_unset_or_without_fakes_is_uniform():
    uniform = trainer.BatchRows(110, 16, 3)
    for real_rows, fraction in ((10, None), (110, 0.5), (None, 0.5)):
        assert torch.equal(trainer.batch_rows(110, 16, 3, real_rows, fraction)(2), uniform(2))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.01, 0.99, "half"])
def test_real_fraction_leaving_no_real_or_no_fake_image_names_the_key(fraction):
    with pytest.raises(CgankdInputError, match=r"students\.recipe\.real_fraction"):
        checked_recipe({"real_fraction": fraction, "batch_size": 16}, "students.recipe")


def test_real_fraction_changes_the_training_of_a_real_plus_fake_set(tmp_path):
    train = concat([bar_images(), bar_images(seed=2)])
    _, uniform = _fit(tmp_path, {**BASE, "steps": 6}, train=train, name="uniform")
    _, mixed = _fit(tmp_path, {**BASE, "steps": 6, "real_fraction": 0.75}, train=train,
                    name="mixed", real_rows=96)
    assert any(not torch.equal(a, b) for a, b in zip(uniform.state_dict().values(),
                                                      mixed.state_dict().values()))
