"""Teacher filtering: quantile cutoffs, keep masks, losses and relabelling."""

import numpy as np
import pytest
import torch

from cgankd.errors import CgankdInputError
from cgankd.filtering import (class_quotas, classification_losses, global_quantile_cutoff,
                              keep_mask, per_class_quantile_cutoffs, per_class_selection,
                              regression_losses, relabel_classification, relabel_regression)

K, PER_CLASS, RHO = 4, 1000, 0.9


def synthetic_pool(seed=0):
    """Shuffled teacher losses, 1000 per class, on a different scale in each class."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(PER_CLASS)
    losses = torch.empty(K * PER_CLASS).exponential_(generator=gen) * (labels + 1)
    order = torch.randperm(K * PER_CLASS, generator=gen)
    return losses[order], labels[order]


def test_per_class_cutoffs_keep_rho_of_each_class_and_drop_its_highest_losses():
    losses, labels = synthetic_pool()
    cutoffs = per_class_quantile_cutoffs(losses, labels, RHO, K)
    assert cutoffs.shape == (K,)
    keep = keep_mask(losses, labels, cutoffs)
    for k in range(K):
        in_class = labels == k
        assert keep[in_class].float().mean().item() == pytest.approx(RHO, abs=0.02)
        kept, dropped = losses[in_class & keep], losses[in_class & ~keep]
        assert dropped.min() > kept.max()  # exactly the highest-loss samples go
    # A single global cutoff would not balance classes: the high-loss class loses far more.
    global_keep = keep_mask(losses, None, global_quantile_cutoff(losses, RHO))
    assert global_keep[labels == K - 1].float().mean() < RHO - 0.1


def test_cutoffs_follow_torch_quantile_linear_interpolation():
    losses = torch.tensor([4.0, 1.0, 3.0, 2.0, 10.0, 30.0, 20.0])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    cutoffs = per_class_quantile_cutoffs(losses, labels, 0.5, 2)
    assert cutoffs.tolist() == pytest.approx([2.5, 20.0])
    assert keep_mask(losses, labels, cutoffs).tolist() == [False, True, False, True,
                                                           True, False, False]


def test_global_cutoff_keeps_rho_of_the_pool():
    losses, _ = synthetic_pool(1)
    for rho in (0.5, 0.7, 0.9):
        cutoff = global_quantile_cutoff(losses, rho)
        assert isinstance(cutoff, float)
        kept = keep_mask(losses, None, cutoff)
        assert kept.float().mean().item() == pytest.approx(rho, abs=0.01)
        assert losses[~kept].min() > losses[kept].max()


def test_bad_rho_and_empty_class_raise():
    losses, labels = synthetic_pool()
    with pytest.raises(CgankdInputError, match="1.5"):
        global_quantile_cutoff(losses, 1.5)
    with pytest.raises(CgankdInputError, match="class 4"):
        per_class_quantile_cutoffs(losses, labels, RHO, K + 1)
    with pytest.raises(CgankdInputError, match="labels"):
        keep_mask(losses, None, torch.ones(K))


def test_classification_losses_and_relabel():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2, 2])
    expected = -torch.log_softmax(logits, dim=1)[torch.arange(3), labels]
    assert torch.allclose(classification_losses(logits, labels), expected)
    assert relabel_classification(logits).tolist() == [0, 1, 2]


def test_regression_losses_are_clipped_and_in_original_units():
    pred = torch.tensor([[1.2], [-0.1], [0.5], [0.25]])  # (N, 1) from a regression head
    labels = torch.tensor([0.9, 0.1, 0.4, 0.25])
    losses = regression_losses(pred, labels, label_scale=90.0)  # e.g. RC-49 angles / 90
    assert losses.shape == (4,)
    assert losses.tolist() == pytest.approx([9.0, 9.0, 9.0, 0.0], abs=1e-4)
    assert relabel_regression(pred).tolist() == pytest.approx([1.0, 0.0, 0.5, 0.25])
    with pytest.raises(CgankdInputError, match="3 labels"):
        regression_losses(pred, labels[:3], 1.0)


def test_a_separate_burnin_sets_the_cutoff_and_none_of_it_is_kept():
    losses, labels = synthetic_pool()
    quotas = class_quotas(K * 400, K)  # the 500 after the burn-in keep ~450 at rho 0.9
    opts = {"burnin": 500, "rho": RHO}
    shared, shared_cutoffs = per_class_selection(losses, labels.numpy(), opts, quotas, True)
    apart, cutoffs = per_class_selection(losses, labels.numpy(),
                                         {**opts, "burnin_separate": True}, quotas, True)
    assert cutoffs == shared_cutoffs  # the same burn-in sets the same cutoffs
    for k in range(K):
        burn = np.flatnonzero(labels.numpy() == k)[:500]
        assert not np.isin(burn, apart).any()  # none of the burn-in is kept ...
        assert np.isin(burn, shared).any()  # ... where the shared burn-in gives some
        assert (losses[apart][labels[apart] == k] < cutoffs[k]).all()
    assert np.bincount(labels.numpy()[apart], minlength=K).tolist() == quotas.tolist()


def test_per_class_selection_takes_each_quota_in_pool_order_below_its_class_cutoff():
    assert class_quotas(10, 3).tolist() == [4, 3, 3]  # the first classes get the rest
    losses, labels = synthetic_pool()
    quotas = class_quotas(K * 800, K)
    kept, cutoffs = per_class_selection(losses, labels.numpy(), {"burnin": 500, "rho": RHO},
                                        quotas, filtering=True)
    assert np.all(np.diff(kept) > 0)  # pool order
    assert np.bincount(labels.numpy()[kept], minlength=K).tolist() == quotas.tolist()
    for k, cutoff in enumerate(cutoffs):
        burn = np.flatnonzero(labels.numpy() == k)[:500]
        assert cutoff == pytest.approx(global_quantile_cutoff(losses[burn], RHO))
        assert (losses[kept][labels[kept] == k] < cutoff).all()
    unfiltered, inf = per_class_selection(losses, labels.numpy(), {}, quotas, filtering=False)
    assert inf == [float("inf")] * K and len(unfiltered) == K * 800
    with pytest.raises(CgankdInputError, match="^filter: class 0 has .* fewer than its quota "
                                               "1000; raise subsample.per_class"):
        per_class_selection(losses, labels.numpy(), {"burnin": 500, "rho": RHO},
                            class_quotas(K * 1000, K), filtering=True)
