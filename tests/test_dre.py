"""cDR-RS building blocks: the DR loss, the DR fit on known Gaussians, the feature nets."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import Killed, kill_after
from scipy.stats import norm, spearmanr

from cgankd.dre import (DRMLP, FIT_DEFAULTS, ClassFeatureExtractor, ClassLabelCode,
                        RegressionAutoencoder, autoencoder_loss, fit_density_ratio,
                        penalised_softplus_loss)
from cgankd.dre.fit import FakeBank, fake_sampler
from cgankd.errors import CgankdInputError


def test_loss_at_zero_ratio_matches_the_spec_check():
    zeros = torch.zeros(7)
    loss, parts = penalised_softplus_loss(zeros, torch.zeros(5), lam=0.01)
    assert parts["sp"] == pytest.approx(-math.log(2) - 0.5, abs=1e-6)
    assert parts["sp"] == pytest.approx(-1.19315, abs=1e-5)
    assert parts["penalty"] == pytest.approx(0.01)
    assert loss.item() == pytest.approx(-1.19315 + 0.01, abs=1e-5)


def test_loss_matches_a_numpy_formula_on_nonzero_ratios():
    r_real = np.array([0.3, 1.7, 2.5, 0.0])
    r_fake = np.array([0.1, 0.9, 4.0])
    sigmoid = 1 / (1 + np.exp(-r_fake))
    sp = (np.mean(sigmoid * r_fake) - np.mean(np.log1p(np.exp(r_fake)))
          - np.mean(1 / (1 + np.exp(-r_real))))
    expected = sp + 1e-3 * (r_fake.mean() - 1) ** 2
    loss, parts = penalised_softplus_loss(torch.tensor(r_real), torch.tensor(r_fake), lam=1e-3)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert parts["sp"] == pytest.approx(sp, rel=1e-10)
    assert parts["mean_psi_fake"] == pytest.approx(5 / 3)


def test_loss_has_gradients_for_both_sides():
    r_real = torch.tensor([0.5, 1.5], requires_grad=True)
    r_fake = torch.tensor([0.2, 2.0], requires_grad=True)
    penalised_softplus_loss(r_real, r_fake)[0].backward()
    assert r_real.grad.abs().sum() > 0 and r_fake.grad.abs().sum() > 0


# Two classes; real features are N(0, 1) in both, fakes differ per class, so a label code
# that ignored the class could not fit both ratios.
FAKE_LAW = {0: (0.5, 1.2), 1: (-0.7, 0.8)}


def test_fit_recovers_the_true_conditional_density_ratio():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n, batch = 4096, 256
    real_h = torch.randn(n, 1, generator=gen)
    real_y = torch.arange(n) % 2

    def real_batches():
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            yield real_h[idx], real_y[idx]

    def fake_batch(y):
        loc = torch.tensor([FAKE_LAW[k][0] for k in (0, 1)])[y]
        scale = torch.tensor([FAKE_LAW[k][1] for k in (0, 1)])[y]
        return (loc + scale * torch.randn(len(y), generator=gen)).unsqueeze(1), y

    code = ClassLabelCode(2)
    code_before = code.embed.weight.detach().clone()
    model = DRMLP(1, 2, hidden=(64, 64, 32), dropout=0.0)
    curves = fit_density_ratio(model, real_batches, fake_batch, label_code=code,
                               train_label_code=True,
                               options={"epochs": 30, "lr": 1e-3, "milestones": (20,)})
    assert [c["epoch"] for c in curves] == list(range(1, 31))
    assert curves[-1]["lr"] == pytest.approx(1e-4)
    assert curves[-1]["loss"] < curves[0]["loss"]
    assert not torch.equal(code.embed.weight, code_before)  # the class code was trained
    assert not model.training  # left in eval mode, ready to score

    grid = torch.linspace(-2.5, 2.5, 101)
    for k, (loc, scale) in FAKE_LAW.items():
        with torch.no_grad():
            psi = model(grid.unsqueeze(1), code(torch.full((101,), k))).numpy()
        true = norm.pdf(grid.numpy()) / norm.pdf(grid.numpy(), loc, scale)
        assert spearmanr(psi, true).statistic > 0.9, k
        assert (psi >= 0).all()


def test_fit_rejects_unknown_options_and_empty_epochs():
    model = DRMLP(2, 1, hidden=(8,), dropout=0.0)
    with pytest.raises(CgankdInputError, match="dre.epoch"):
        fit_density_ratio(model, lambda: [], lambda y: (None, y), options={"epoch": 3})
    with pytest.raises(CgankdInputError, match="no batch"):
        fit_density_ratio(model, lambda: [], lambda y: (None, y), options={"epochs": 1})


def test_drmlp_shapes_and_non_negativity():
    model = DRMLP(3 * 4 * 4, 10, hidden=(32, 16), dropout=0.5).eval()
    psi = model(torch.randn(5, 3, 4, 4), torch.randn(5, 10))
    assert psi.shape == (5,) and (psi >= 0).all()
    assert DRMLP(4, 1, hidden=(16,))(torch.randn(3, 4), torch.rand(3)).shape == (3,)
    with pytest.raises(CgankdInputError, match="12"):
        DRMLP(4, 1, hidden=(12,))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_class_feature_extractor_shapes(channels, resolution):
    net = ClassFeatureExtractor(channels, num_classes=7, feat_shape=(channels, 8, 8), width=4)
    logits, h = net(torch.randn(2, channels, resolution, resolution))
    assert logits.shape == (2, 7) and h.shape == (2, channels * 64)
    assert (h >= 0).all()


def test_class_feature_extractor_default_is_resnet34_sized():
    net = ClassFeatureExtractor(3, num_classes=10, feat_shape=(3, 32, 32))
    blocks = [m for m in net.trunk.modules() if type(m).__name__ == "ResidualBlock"]
    assert len(blocks) == 3 + 4 + 6 + 3
    assert net.to_feature[0].in_features == 512 and net.to_feature[0].out_features == 3 * 32 * 32


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_autoencoder_shapes(channels, resolution):
    net = RegressionAutoencoder(channels, resolution, feat_shape=(channels, 4, 4), width=4)
    x = torch.randn(2, channels, resolution, resolution)
    recon, h, y_hat = net(x)
    assert recon.shape == x.shape and h.shape == (2, channels * 16) and y_hat.shape == (2,)
    assert (h >= 0).all()


def test_autoencoder_rejects_odd_resolutions():
    with pytest.raises(CgankdInputError, match="48"):
        RegressionAutoencoder(1, 48, feat_shape=(1, 4, 4))


def test_autoencoder_loss_formula_and_decrease():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 16, 16)
    y = torch.rand(16, 1)  # a (N, 1) label must not broadcast against y_hat's (N,)
    net = RegressionAutoencoder(1, 16, feat_shape=(1, 8, 8), width=8)
    recon, h, y_hat = net(x)
    loss, parts = autoencoder_loss(recon, x, h, y_hat, y, sparsity=1e-3, reg_weight=1.0)
    expected = (((recon - x) ** 2).mean() + 1e-3 * h.mean()
                + ((y_hat - y.squeeze(1)) ** 2).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"loss", "recon", "sparsity", "regression"}

    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        recon, h, y_hat = net(x)
        loss, _ = autoencoder_loss(recon, x, h, y_hat, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_dr_mlp_starts_alive_at_ratio_one_and_learns():
    """psi starts at 1 for every input, so the ReLU head has gradients from the first step."""
    torch.manual_seed(0)
    model = DRMLP(4, 2, hidden=(8, 8), groups=2, dropout=0.0)
    h, code = torch.randn(16, 4), torch.randn(16, 2)
    assert torch.allclose(model(h, code), torch.ones(16))
    model(h, code).sum().backward()
    assert model.net[-2].weight.grad.abs().sum() > 0


def _memorising_fit(real_h: torch.Tensor, heldout_real: torch.Tensor, epochs: int,
                    val_every: int):
    """A 1-class fit of 8 real points against N(0, 1) fakes, scored on ``heldout_real``."""
    gen = torch.Generator().manual_seed(1)
    y8 = torch.zeros(len(real_h), dtype=torch.long)
    fake_h = torch.randn(512, 1, generator=gen)  # fixed held-out fakes, as the stage draws them
    heldout = (heldout_real, torch.zeros(len(heldout_real), dtype=torch.long),
               fake_h, torch.zeros(512, dtype=torch.long))
    torch.manual_seed(0)
    model = DRMLP(1, 1, hidden=(64, 64), dropout=0.0)
    curves = fit_density_ratio(model, lambda: [(real_h, y8)],
                               lambda y: (torch.randn(len(y), 1, generator=gen), y),
                               label_code=lambda y: torch.ones(len(y), 1),
                               options={"epochs": epochs, "lr": 1e-2, "milestones": (epochs,),
                                        "weight_decay": 0.0, "val_every": val_every},
                               heldout=heldout)
    return model, curves


def test_heldout_selection_keeps_the_best_epoch_and_restores_it():
    # Real law N(1, 0.5) against fakes N(0, 1): a true ratio exists, but 8 real points are
    # memorised long before the fit ends, so held-out SP first falls, then rises.
    gen = torch.Generator().manual_seed(0)
    real_h = 1 + 0.5 * torch.randn(8, 1, generator=gen)
    heldout_real = 1 + 0.5 * torch.randn(512, 1, generator=gen)
    model, curves = _memorising_fit(real_h, heldout_real, epochs=400, val_every=10)
    scored = [c for c in curves if "val_sp" in c]
    assert [c["epoch"] for c in scored] == list(range(10, 401, 10))
    best = min(scored, key=lambda c: c["val_sp"])
    assert curves[-1]["selected_epoch"] == best["epoch"] < 400
    assert best["val_sp"] < scored[-1]["val_sp"]  # the last epoch had overfitted
    assert best["val_sp"] < -1.3132  # better than psi = 1 everywhere (SP = -1.31326)
    # the restored model is the selected one: its held-out SP is the recorded value
    with torch.no_grad():
        zeros = torch.zeros(512, 1)
        h_fake = torch.randn(512, 1, generator=torch.Generator().manual_seed(1))
        _, parts = penalised_softplus_loss(model(heldout_real, zeros + 1), model(h_fake, zeros + 1))
    assert parts["sp"] == pytest.approx(curves[-1]["selected_val_sp"], abs=1e-6)


def test_heldout_selection_returns_a_flat_ratio_when_nothing_generalises():
    # Held-out real data from the fakes' own law: no ratio beats psi = 1, so the fit's memorised
    # points must not survive selection (epoch 0, the flat ratio, is kept).
    gen = torch.Generator().manual_seed(0)
    real_h = 1 + 0.5 * torch.randn(8, 1, generator=gen)
    model, curves = _memorising_fit(real_h, torch.randn(512, 1, generator=gen), epochs=100,
                                    val_every=10)
    assert curves[-1]["selected_epoch"] == 0
    with torch.no_grad():
        psi = model(torch.linspace(-3, 3, 50).unsqueeze(1), torch.ones(50, 1))
    assert torch.allclose(psi, torch.ones(50))
    _, last_only = _memorising_fit(real_h, torch.randn(512, 1, generator=gen), epochs=100,
                                   val_every=0)
    assert "selected_epoch" not in last_only[-1] and "val_sp" not in last_only[-1]


# --- the fake bank (dre.options.fit.fakes: bank) ----------------------------------------------

def _labelled_make(calls):
    """make(y, gen): a fake's feature is (its label, a random draw), so a draw shows its label."""
    def make(y, gen):
        calls.append(len(y))
        return torch.stack([y.float(), torch.rand(len(y), generator=gen)], 1)
    return make


@pytest.mark.parametrize("labels", [torch.tensor([0, 1, 1, 2, 2, 2]),  # classes
                                    torch.tensor([0.1, 0.5, 0.5, 0.9])])  # regression labels
def test_bank_draws_fakes_at_the_batch_labels_and_reaches_the_whole_group(labels):
    calls = []
    sampler = fake_sampler(_labelled_make(calls), labels, {"fakes": "bank", "bank_per_real": 300},
                           generator=torch.Generator().manual_seed(0),
                           bank_generator=torch.Generator().manual_seed(1))
    assert sum(calls) == 300 * len(labels) and max(calls) <= 512  # made once, in chunks
    made = len(calls)
    y = labels[torch.randint(len(labels), (4000,), generator=torch.Generator().manual_seed(2))]
    h, y_out = sampler(y)
    assert len(calls) == made  # no fake is generated while the fit draws
    assert torch.equal(y_out, y) and torch.equal(h[:, 0], y.float())
    # uniform within each label's group: every one of its 300 x (real count) fakes is reachable
    bank = FakeBank.build(_labelled_make([]), labels, 300, torch.Generator().manual_seed(1))
    top = labels.max()
    drawn = h[y == top, 1].unique()
    in_bank = bank.h[bank.h[:, 0] == top.float(), 1]
    assert len(in_bank) == 300 * int((labels == top).sum())
    assert len(drawn) > 0.6 * len(in_bank) and set(drawn.tolist()) <= set(in_bank.tolist())
    with pytest.raises(CgankdInputError, match="not one the bank was made at"):
        sampler(labels[:1] + 0.25)


def test_bank_is_fixed_by_its_seed_and_draws_by_the_fit_generator():
    labels = torch.arange(20) % 4

    def draws(bank_seed, fit_seed):
        sampler = fake_sampler(_labelled_make([]), labels, {"fakes": "bank", "bank_per_real": 5},
                               generator=torch.Generator().manual_seed(fit_seed),
                               bank_generator=torch.Generator().manual_seed(bank_seed))
        return torch.cat([sampler(labels[:8])[0] for _ in range(3)])

    assert torch.equal(draws(1, 0), draws(1, 0))
    assert not torch.equal(draws(2, 0), draws(1, 0))  # another bank
    assert not torch.equal(draws(1, 3), draws(1, 0))  # the same bank, other draws


def test_on_the_fly_fakes_stay_the_published_default():
    assert FIT_DEFAULTS["fakes"] == "on_the_fly"
    calls = []
    sampler = fake_sampler(_labelled_make(calls), torch.arange(4), {},
                           generator=torch.Generator().manual_seed(0),
                           bank_generator=torch.Generator().manual_seed(1))
    assert calls == []
    sampler(torch.tensor([3, 1]))
    assert calls == [2]  # fresh fakes at every call


def test_fake_options_are_checked_naming_their_key():
    from cgankd.stage_options.dre import checked_dre_options
    with pytest.raises(CgankdInputError, match=r"dre.options.fit.fakes: 'banks' is not one of"):
        checked_dre_options({"fit": {"fakes": "banks"}})
    with pytest.raises(CgankdInputError, match=r"dre.options.fit.bank_per_real"):
        checked_dre_options({"fit": {"bank_per_real": 0}})
    huge = {"fakes": "bank", "bank_per_real": 10**6}
    with pytest.raises(CgankdInputError, match=r"dre.options.fit.bank_per_real: a bank of"):
        fake_sampler(lambda y, g: torch.zeros(len(y), 4096), torch.arange(1000), huge,
                     generator=torch.Generator(), bank_generator=torch.Generator(),
                     where="dre.options.fit")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_banked_dre_stage_resumes_bit_for_bit(tmp_path, monkeypatch, task):
    """A fit killed midway re-makes its bank from the seed and ends where a whole one does;
    the bank is used (not on-the-fly fakes: those give another fit)."""
    from test_fake_stages import DRE, GAN
    from toy_data import write_bar_splits

    from cgankd.h5io import read_split
    from cgankd.stages import fit_dre as dre_stage
    from cgankd.stages.train_cgan import train_cgan
    from cgankd.train.resume import load_checkpoint
    paths = write_bar_splits(tmp_path, task)
    train_cgan(read_split(paths["train"]), GAN, tmp_path / "cgan", seed=0, progress=False)
    # val_every 0 keeps the last epoch (selection could keep the flat ratio of epoch 0 in both)
    bank = {"epochs": 6, "val_every": 0, "fakes": "bank", "bank_per_real": 3}

    def run(name, fit):
        return dre_stage.run(paths["train"], paths["val"], tmp_path / "cgan" / "generator.pt",
                             tmp_path / name / "dre.pt", tmp_path / name / "curves.json",
                             options={**DRE, "fit": fit}, seed=0, progress=False)

    def dr_state(name):
        return load_checkpoint(tmp_path / name / "dre.pt")["dr"]

    run("whole", bank)
    run("fly", {**bank, "fakes": "on_the_fly"})
    monkeypatch.setattr(dre_stage, "DR_CHECKPOINT_EPOCHS", 2)

    kill_after(monkeypatch, "dre fit", 4)
    with pytest.raises(Killed):
        run("cut", bank)
    monkeypatch.undo()
    run("cut", bank)
    whole, cut, fly = dr_state("whole"), dr_state("cut"), dr_state("fly")
    assert all(torch.equal(value, cut[key]) for key, value in whole.items())
    assert not all(torch.equal(value, fly[key]) for key, value in whole.items())
    curves = [json.loads((tmp_path / name / "curves.json").read_text())["dr"]
              for name in ("whole", "cut")]
    assert curves[0] == curves[1]


def test_fit_flushes_cpu_denormals_while_it_runs_only():
    """Denormals made the digits fit 3.6x slower on CPU; the fit flushes them, then restores."""
    tiny = torch.tensor([1e-40])  # a float32 denormal
    seen = []

    def fake_batch(y):
        seen.append((tiny * 1.0).item())
        return torch.randn(len(y), 2), y

    model = DRMLP(2, 1, hidden=(8,), dropout=0.0)
    fit_density_ratio(model, lambda: [(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))],
                      fake_batch, label_code=lambda y: torch.ones(len(y), 1),
                      options={"epochs": 2})
    if torch.set_flush_denormal(True):  # the CPU has the mode
        torch.set_flush_denormal(False)
        assert seen == [0.0, 0.0]
    assert (tiny * 1.0).item() > 0  # off again after the fit
