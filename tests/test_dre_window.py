"""The regression DR fit as cDR-RS runs it: the label window (with the autoencoder's label
check) for the fakes, psi conditioned on the real label, and label-balanced real batches
(dre.options.fit.label_window / zeta_mult / window_retries / real_batches)."""

import pytest
import torch
from torch import nn

from cgankd.dre.fit import balanced_batches, fake_sampler, fit_density_ratio, windowed
from cgankd.errors import CgankdInputError
from cgankd.stage_options.dre import FIT_DEFAULTS, checked_dre_options
from cgankd.stages.fit_dre import fit_ratio
from cgankd.train.tensorset import TensorSet

ZETA = 0.05


def _scored(calls, miss_first=0):
    """make(y', gen) -> (h, pred): h[:, 0] is the label the fake was generated at; the first
    ``miss_first`` calls predict a label far outside every window."""
    def make(drawn, gen):
        calls.append(drawn.clone())
        h = torch.stack([drawn, torch.rand(len(drawn), generator=gen)], 1)
        pred = drawn + (0.5 if len(calls) <= miss_first else 0.0)
        return h, pred
    return make


def test_published_defaults_and_checked_keys():
    assert FIT_DEFAULTS["label_window"] is True and FIT_DEFAULTS["zeta_mult"] == 6.0
    assert FIT_DEFAULTS["window_retries"] == 200 and FIT_DEFAULTS["real_batches"] == "balanced"
    for fit, key in [({"real_batches": "shuffled"}, "real_batches"),
                     ({"label_window": "yes"}, "label_window"),
                     ({"zeta_mult": 0}, "zeta_mult"), ({"window_retries": -1}, "window_retries")]:
        with pytest.raises(CgankdInputError, match=rf"dre\.options\.fit\.{key}"):
            checked_dre_options({"fit": fit})


def test_window_fakes_lie_in_the_window_and_carry_the_real_label():
    calls = []
    sampler = fake_sampler(windowed(_scored(calls), ZETA, 3), torch.tensor([0.0, 0.5, 1.0]),
                           {}, generator=torch.Generator().manual_seed(0),
                           bank_generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0.0, 0.5, 1.0]).repeat(200)
    h, y_out, keep = sampler(y)
    assert torch.equal(y_out, y) and keep.all()  # psi is conditioned on the real label
    drawn = h[:, 0]
    assert ((drawn - y).abs() <= ZETA + 1e-6).all() and (0 <= drawn).all() and (drawn <= 1).all()
    assert not torch.equal(drawn, y)  # made at y' in the window, not at y itself
    assert (drawn[y == 0.5] < 0.5).any() and (drawn[y == 0.5] > 0.5).any()


def test_label_check_retries_then_drops():
    y = torch.tensor([0.2, 0.4])
    calls = []
    h, keep = windowed(_scored(calls, miss_first=1), ZETA, 1)(y, torch.Generator())
    assert keep.all() and len(calls) == 2  # the failures were remade once, at the same y'
    assert torch.equal(calls[1], calls[0])
    calls = []
    h, keep = windowed(_scored(calls, miss_first=5), ZETA, 2)(y, torch.Generator())
    assert not keep.any() and len(calls) == 3  # bounded: 1 + 2 retries
    sampler = fake_sampler(windowed(_scored([], miss_first=99), ZETA, 1), y, {},
                           generator=torch.Generator(), bank_generator=torch.Generator(),
                           where="dre.options.fit")
    with pytest.raises(CgankdInputError, match=r"dre\.options\.fit\.label_window"):
        sampler(y)


def test_fit_drops_pairs_whose_fake_failed_the_check():
    seen = []

    class Psi(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(2, 1)

        def forward(self, h, code):
            seen.append(len(h))
            return self.w(h).relu().reshape(-1)

    h_real, y_real = torch.rand(8, 2), torch.rand(8)
    keep = torch.tensor([True, False] * 4)
    fit_density_ratio(Psi(), lambda: [(h_real, y_real)],
                      lambda y: (torch.rand(len(y), 2), y, keep), options={"epochs": 1})
    assert seen == [4, 4]  # real and fake alike lost the four failing pairs


def test_the_bank_honours_the_window():
    labels = torch.tensor([0.1, 0.1, 0.6])
    sampler = fake_sampler(windowed(_scored([]), ZETA, 0), labels,
                           {"fakes": "bank", "bank_per_real": 50},
                           generator=torch.Generator().manual_seed(0),
                           bank_generator=torch.Generator().manual_seed(1))
    y = labels.repeat(100)
    h, y_out = sampler(y)
    assert torch.equal(y_out, y)
    assert ((h[:, 0] - y).abs() <= ZETA + 1e-6).all() and not torch.equal(h[:, 0], y)
    with pytest.raises(CgankdInputError, match=r"label_window: none of the 5 banked fakes"):
        fake_sampler(windowed(_scored([], miss_first=99), ZETA, 0), labels,
                     {"fakes": "bank", "bank_per_real": 5}, generator=torch.Generator(),
                     bank_generator=torch.Generator(), where="dre.options.fit")


def test_balanced_batches_hold_each_label_equally_often():
    labels = torch.tensor([0.0] * 90 + [0.5] * 9 + [1.0])  # 90 / 9 / 1 images
    gen = torch.Generator().manual_seed(0)
    batches = [b for _ in range(300) for b in balanced_batches(labels, 16, gen)]
    assert len(balanced_batches(labels, 16, gen)) == 100 // 16
    assert all(len(b) == 16 for b in batches)
    share = torch.stack([(labels[torch.cat(batches)] == v).float().mean()
                         for v in (0.0, 0.5, 1.0)])
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.02)
    rows = torch.cat(batches)
    assert set(rows[labels[rows] == 0.5].tolist()) == set(range(90, 99))  # all reachable


class _Source:
    """A generator stub: images are painted with the label asked for; records those labels
    and the labels psi's code is asked for."""
    meta = {"kappa_base": 0.01}
    label_code_dim = 1

    def __init__(self):
        self.made, self.coded = [], []

    def images(self, y, gen):
        self.made.append(y.clone())
        return (y.reshape(-1, 1, 1, 1) * 2 - 1).expand(-1, 1, 2, 2).clone()

    def label_code(self, y):
        self.coded.append(y.detach().clone())
        return y.reshape(-1, 1)


class _Extractor(nn.Module):
    def forward(self, x):
        return None, x.flatten(1), (x.mean(dim=(1, 2, 3)) + 1) / 2


@pytest.mark.parametrize("window", [True, False])
def test_fit_ratio_makes_fakes_in_the_window_and_balances_reals(window):
    y = torch.tensor([0.2] * 30 + [0.7] * 2)
    train = TensorSet(torch.zeros(32, 1, 2, 2, dtype=torch.uint8), y, torch.arange(32))
    source = _Source()
    opts = checked_dre_options({"batch_size": 8, "dr_hidden": [8, 8], "dr_dropout": 0.0,
                                "fit": {"epochs": 3, "val_every": 0, "zeta_mult": 5.0,
                                        "label_window": window}})
    gen = torch.Generator().manual_seed(0)
    fit_ratio(_Extractor(), source, train, train, opts, task="regression", num_classes=None,
              seed=0, device=torch.device("cpu"), generator=gen)
    made, coded = torch.cat(source.made), torch.cat(source.coded)
    assert torch.isin(coded, y).all()  # psi is conditioned on real labels only
    near = torch.minimum((made - 0.2).abs(), (made - 0.7).abs())
    if window:
        assert (near <= 0.05 + 1e-6).all() and (near > 1e-4).any()
    else:
        assert (near < 1e-6).all()
    # balanced: the label held by 2 of 32 images is half of what psi sees of the reals
    assert 0.35 < float((coded == y[-1]).float().mean()) < 0.65


def test_the_fit_dre_job_gets_the_samplers_window(tmp_path):
    """The workflow hands the fit the sampler's window (digits_angle: zeta_mult 1) unless
    dre.options.fit sets its own; checked on the job Snakemake plans."""
    import importlib.util
    from pathlib import Path

    import yaml
    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("debug_job", repo / "tools" / "debug_job.py")
    debug_job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(debug_job)

    def fit_options(overlay, name="digits_angle", base="experiments/digits_angle.yaml"):
        config = tmp_path / "overlay.yaml"
        config.write_text(yaml.safe_dump({"base": str(repo / "config" / base), **overlay}))
        found = debug_job.find_job(f"results/{name}/dre/dre.pt", repo / "Snakefile",
                                   tmp_path, [config], cores=1)
        return found.snakemake.params.options.get("fit", {})

    # classification has no window: the digits default's fit gets its options as written
    written = yaml.safe_load((repo / "config" / "config.yaml").read_text())["dre"]["options"]
    assert fit_options({}, "digits", "config.yaml") == written.get("fit", {})

    fit = fit_options({})
    assert (fit["label_window"], fit["zeta_mult"]) == (True, 1.0)
    fit = fit_options({"subsample": {"options": {"label_grid": 60, "per_label": 25,
                                                 "label_window": False}}})
    assert fit["label_window"] is False
    fit = fit_options({"dre": {"options": {"fit": {"label_window": False}}}})
    assert (fit["label_window"], fit["zeta_mult"]) == (False, 1.0)
