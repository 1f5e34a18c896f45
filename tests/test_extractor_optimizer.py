"""dre.options.extractor_optimizer: the DR extractor's optimiser. null trains it with the
recipe's SGD (cGAN-KD v3's sparse autoencoder); {name: adam, betas} with Adam at the recipe's
lr and weight decay (cGAN-KD v1, RC49/ and UTKFace/CcGAN-based_KD/train_sparseAE.py:42 and
:49 at 75408cd: Adam lr 0.01, betas (0.5, 0.999), wd 1e-4). The stage is run on the toy
regression set and stopped after the extractor's first step, so the optimiser checked is
the one that stepped."""

import pytest
import torch
from toy_data import write_bar_splits

import cgankd.stages._extractor as extractor_training
import cgankd.stages.fit_dre as fit_dre_stage
from cgankd.errors import CgankdInputError
from cgankd.stage_options.dre import checked_dre_options
from cgankd.stage_options.recipe import RECIPE_DEFAULTS

RECIPE = {"steps": 3, "eval_every": 3, "batch_size": 16, "crop_pad": 0, "flip": False,
          "lr": 0.01, "weight_decay": 1e-4}
ADAM = {"name": "adam", "betas": [0.5, 0.999]}


class _Stop(Exception):
    """Raised after the extractor's first step: only its optimiser is under test."""


def _optimizer_that_stepped(tmp_path, monkeypatch, extractor_optimizer):
    made = []

    def recording(cls):
        class Recording(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)
        return Recording

    monkeypatch.setattr(torch.optim, "SGD", recording(torch.optim.SGD))
    monkeypatch.setattr(torch.optim, "Adam", recording(torch.optim.Adam))
    real_fit = extractor_training.fit

    def fit_one_step(*args, **kwargs):
        def stop(done):
            raise _Stop
        return real_fit(*args, **kwargs, on_step=stop)

    monkeypatch.setattr(extractor_training, "fit", fit_one_step)
    paths = write_bar_splits(tmp_path, "regression")
    generator = tmp_path / "generator.pt"
    generator.write_bytes(b"only hashed before the extractor trains")
    options = {"extractor_width": 4, "extractor_recipe": RECIPE,
               "extractor_optimizer": extractor_optimizer}
    with pytest.raises(_Stop):
        fit_dre_stage.run(paths["train"], paths["val"], generator, tmp_path / "dre.pt",
                          tmp_path / "curves.json", options=options, seed=0, device="cpu",
                          progress=False)
    assert len(made) == 1
    return made[0]


def test_published_v1_extractor_steps_with_adam(tmp_path, monkeypatch):
    opt = _optimizer_that_stepped(tmp_path, monkeypatch, ADAM)
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert (group["initial_lr"], group["betas"], group["weight_decay"]) == (
        0.01, (0.5, 0.999), 1e-4)
    assert opt.state  # it stepped: Adam's moment estimates exist


@pytest.mark.parametrize("choice", [None, {"name": "sgd"}])
def test_default_extractor_steps_with_the_recipes_sgd(tmp_path, monkeypatch, choice):
    opt = _optimizer_that_stepped(tmp_path, monkeypatch, choice)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["initial_lr"], group["momentum"], group["weight_decay"]) == (
        0.01, RECIPE_DEFAULTS["momentum"], 1e-4)


def test_extractor_optimizer_checked():
    assert checked_dre_options({})["extractor_optimizer"] is None  # default: the recipe's SGD
    adam = checked_dre_options({"extractor_optimizer": {"name": "adam"}})["extractor_optimizer"]
    assert adam["name"] == "adam" and tuple(adam["betas"]) == (0.5, 0.999)
    # the shared recipe is untouched: no optimiser key in it
    assert "optimizer" not in RECIPE_DEFAULTS and "extractor_optimizer" not in RECIPE_DEFAULTS


@pytest.mark.parametrize("value, message", [
    ({"name": "rmsprop"},
     r"^dre\.options\.extractor_optimizer\.name: 'rmsprop' is not one of sgd, adam$"),
    ({"name": "adam", "lr": 0.01},
     r"^unknown option dre\.options\.extractor_optimizer\.lr; known: betas, name$"),
    ({"name": "adam", "betas": [0.5]}, r"^dre\.options\.extractor_optimizer\.betas: must be "),
    ("adam", r"^dre\.options\.extractor_optimizer: must be null \(the recipe's SGD\) or a "),
])
def test_bad_extractor_optimizer_is_one_line_naming_the_key(value, message):
    with pytest.raises(CgankdInputError, match=message) as err:
        checked_dre_options({"extractor_optimizer": value})
    assert "\n" not in str(err.value)
