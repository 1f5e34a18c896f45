"""Rejection subsampling with an exact ratio: q = N(0, 2^2) proposals, p = N(1, 1) target."""

import math
from collections import namedtuple

import pytest
import torch
from scipy.stats import kstest

from cgankd.errors import CgankdInputError
from cgankd.sampling import in_window, rejection_sample, window_labels

TARGET = (1.0, 1.0)    # p = N(1, 1)
PROPOSAL = (0.0, 2.0)  # q = N(0, 2^2)
# sup p/q = 2 exp(1/6), attained at x = 4/3, so the ideal acceptance rate is 1 / M.
TRUE_M = 2 * math.exp(1 / 6)


def log_normal_pdf(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale)


def exact_ratio(x):
    return torch.exp(log_normal_pdf(x, *TARGET) - log_normal_pdf(x, *PROPOSAL))


def make_proposer(seed):
    gen = torch.Generator().manual_seed(seed)
    return lambda n: PROPOSAL[0] + PROPOSAL[1] * torch.randn(n, generator=gen)


def run(seed=0, n_keep=2000, sink=None, **kwargs):
    settings = {"batch_size": 500, "n_burnin": 2000, "max_batches": 100, "reuse_burnin": True,
                **kwargs}
    return rejection_sample(make_proposer(seed), exact_ratio, n_keep,
                            generator=torch.Generator().manual_seed(seed + 1), sink=sink,
                            name="class 3", **settings)


@pytest.mark.parametrize("reuse_burnin", [True, False])
def test_accepted_samples_follow_the_target_and_proposals_do_not(reuse_burnin):
    result = run(reuse_burnin=reuse_burnin)
    assert result.samples.shape == (2000,) and result.psi.shape == (2000,)
    assert (result.stats["burnin_accepted"] > 0) == reuse_burnin
    assert torch.allclose(result.psi, exact_ratio(result.samples))
    assert kstest(result.samples.numpy(), "norm", args=TARGET).pvalue > 0.01
    assert kstest(make_proposer(5)(2000).numpy(), "norm", args=TARGET).pvalue < 1e-6


def test_burn_in_reuse_draws_from_the_target_when_the_burn_in_alone_suffices():
    # 20,000 burn-in proposals at acceptance 1 / M ~ 0.42 give ~8,500 candidates: the 3,000
    # kept come from the burn-in alone, accepted under its M (close to the true sup here).
    result = run(n_keep=3000, n_burnin=20000)
    assert result.stats["proposed"] == 0 and result.stats["burnin_accepted"] == 3000
    assert kstest(result.samples.numpy(), "norm", args=TARGET).pvalue > 0.01


def test_burn_in_reuse_saves_proposals_and_reports_them():
    on, off = run(n_keep=1500).stats, run(n_keep=1500, reuse_burnin=False).stats
    assert on["reuse_burnin"] and not off["reuse_burnin"] and off["burnin_accepted"] == 0
    # ~840 of the 2000 burn-in proposals are accepted: two batches of 500 fewer to propose
    assert on["burnin_accepted"] == pytest.approx(2000 / TRUE_M, rel=0.1)
    assert on["proposed"] <= off["proposed"] - 1000
    assert on["acceptance_rate"] == pytest.approx(1 / TRUE_M, abs=0.03)


def test_stats_report_the_theoretical_acceptance_rate():
    stats = run(n_keep=4000).stats
    assert stats["accepted"] == 4000 and stats["name"] == "class 3"
    assert stats["proposed"] % 500 == 0 and stats["burnin"] == 2000
    assert stats["M"] == pytest.approx(TRUE_M, rel=0.01)
    assert stats["acceptance_rate"] == pytest.approx(1 / TRUE_M, abs=0.03)


def test_keeps_exactly_n_keep_even_mid_batch():
    assert run(n_keep=777).samples.shape == (777,)


def test_same_seeds_same_samples():
    assert torch.equal(run(seed=4).samples, run(seed=4).samples)
    assert not torch.equal(run(seed=4).samples, run(seed=6).samples)


def test_streaming_to_a_sink_gives_the_same_samples():
    chunks = []
    streamed = run(n_keep=1500, sink=chunks.append)
    held = run(n_keep=1500)
    assert streamed.samples is None and len(chunks) > 1
    assert torch.equal(torch.cat(chunks), held.samples)
    assert torch.equal(streamed.psi, held.psi)


def test_payloads_travel_with_their_samples():
    gen = torch.Generator().manual_seed(0)

    def propose(n):
        x = PROPOSAL[1] * torch.randn(n, 1, generator=gen)
        return {"x": x, "label": torch.full((n,), 3), "seen": x.squeeze(1).clone()}

    result = rejection_sample(propose, lambda b: exact_ratio(b["x"].squeeze(1)), 300,
                              batch_size=128, n_burnin=256, max_batches=50,
                              generator=torch.Generator().manual_seed(1), reuse_burnin=True)
    assert result.samples["x"].shape == (300, 1)
    assert torch.equal(result.samples["x"].squeeze(1), result.samples["seen"])
    assert (result.samples["label"] == 3).all()

    pairs = rejection_sample(lambda n: (torch.randn(n, generator=gen), torch.arange(n)),
                             lambda b: exact_ratio(b[0]), 50, batch_size=64, n_burnin=64,
                             max_batches=50, generator=torch.Generator().manual_seed(1),
                             reuse_burnin=True)
    assert isinstance(pairs.samples, tuple) and pairs.samples[1].shape == (50,)

    Fake = namedtuple("Fake", "x index")
    named = rejection_sample(lambda n: Fake(torch.randn(n, generator=gen), torch.arange(n)),
                             lambda b: exact_ratio(b.x), 50, batch_size=64, n_burnin=64,
                             max_batches=50, generator=torch.Generator().manual_seed(1),
                             reuse_burnin=False)
    assert isinstance(named.samples, Fake) and named.samples.index.shape == (50,)


def test_max_batches_bound_raises_naming_the_class():
    with pytest.raises(CgankdInputError, match="class 3.*max_batches=2"):
        run(n_keep=5000, max_batches=2)


def test_all_zero_burn_in_raises():
    with pytest.raises(CgankdInputError, match="label 0.25.*every psi"):
        rejection_sample(make_proposer(0), lambda x: torch.zeros(len(x)), 10, batch_size=50,
                         n_burnin=100, max_batches=5, generator=torch.Generator(),
                         reuse_burnin=True, name="label 0.25")


def test_negative_or_nan_ratio_raises():
    for bad in (-1.0, float("nan")):
        with pytest.raises(CgankdInputError, match="non-finite"):
            rejection_sample(make_proposer(0), lambda x: torch.full((len(x),), bad), 10,
                             batch_size=50, n_burnin=100, max_batches=5,
                             generator=torch.Generator(), reuse_burnin=True)


def test_window_labels_stay_in_the_clipped_window():
    gen = torch.Generator().manual_seed(0)
    labels = window_labels(0.05, 0.1, 20000, gen)
    assert labels.min() >= 0.0 and labels.max() <= 0.15
    assert (labels == 0).sum() == 0  # the window is clipped, not the draws: no mass at 0
    assert labels.mean().item() == pytest.approx(0.075, abs=0.002)
    middle = window_labels(0.5, 0.1, 20000, gen)
    assert middle.min() >= 0.4 and middle.max() <= 0.6
    assert torch.equal(window_labels(0.3, 0.1, 10, torch.Generator().manual_seed(2)),
                       window_labels(0.3, 0.1, 10, torch.Generator().manual_seed(2)))
    with pytest.raises(CgankdInputError, match="1.5"):
        window_labels(1.5, 0.1, 3, gen)


def test_in_window_mask():
    pred = torch.tensor([[0.21], [0.35], [0.5], [0.29]])
    assert in_window(pred, 0.3, 0.1).tolist() == [True, True, False, True]
    targets = torch.tensor([[0.2], [0.0], [0.5], [0.0]])
    assert in_window(pred, targets, 0.05).tolist() == [True, False, True, False]
