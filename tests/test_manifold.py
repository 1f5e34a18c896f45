"""Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020):
a case worked by hand, brute-force references, and synthetic Gaussians of known behaviour."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cgankd.metrics import manifold
from cgankd.metrics.manifold import ball_hits, knn_radii, manifold_min_count, manifold_scores

# ---------------------------------------------------------------- worked by hand

# 1-D, k = 1. Real NND_1 radii: 0->1, 1->1, 3->2, 7->4, 12->5. Fake NND_1: 0.5->2, 2.5->2,
# 5->2.5, 20->15.
REAL_1D = np.array([[0.0], [1.0], [3.0], [7.0], [12.0]])
FAKE_1D = np.array([[0.5], [2.5], [5.0], [20.0]])


def test_knn_radii_by_hand():
    np.testing.assert_allclose(knn_radii(REAL_1D, 1), [1, 1, 2, 4, 5])
    # k = 2: 0 -> {1, 3}; 1 -> {0, 3}; 3 -> {1, 0}; 7 -> {3, 12}; 12 -> {7, 3}
    np.testing.assert_allclose(knn_radii(REAL_1D, [1, 2]), [[1, 1, 2, 4, 5], [3, 2, 3, 5, 9]])


def test_scores_by_hand():
    got = manifold_scores(REAL_1D, FAKE_1D, pr_k=1, dc_k=1)
    # precision: 0.5 in B(0,1); 2.5 in B(3,2); 5 on the sphere of B(3,2) (closed: inside);
    # 20 in no ball -> 3/4
    assert got["precision"] == pytest.approx(0.75)
    # recall: every real lies in some fake ball; 12 only in the outlier 20's huge B(20,15):
    # the weakness coverage avoids
    assert got["recall"] == pytest.approx(1.0)
    # density: real balls holding each fake: 0.5 -> B(0), B(1); 2.5 -> B(3); 5 -> B(3), B(7);
    # 20 -> none: (2 + 1 + 2 + 0) / (k M = 4)
    assert got["density"] == pytest.approx(5 / 4)
    # coverage: B(12, 5) holds no fake (5 is 7 away, 20 is 8 away) -> 4/5
    assert got["coverage"] == pytest.approx(0.8)


def test_ball_hits_by_hand_and_with_several_radii():
    per_point, per_ball = ball_hits(FAKE_1D, REAL_1D, knn_radii(REAL_1D, 1))
    assert per_point.tolist() == [2, 1, 2, 0]
    assert per_ball.tolist() == [1, 1, 2, 1, 0]
    both_p, both_b = ball_hits(FAKE_1D, REAL_1D, knn_radii(REAL_1D, [1, 2]))
    assert both_p.shape == (2, 4) and both_p[0].tolist() == [2, 1, 2, 0]
    assert both_b[0].tolist() == [1, 1, 2, 1, 0]


# ---------------------------------------------------------------- brute force, chunking

def brute_force(real, fake, pr_k, dc_k):
    def radii(x, k):
        return np.sort(cdist(x, x), axis=1)[:, k]
    d_fr = cdist(fake, real)  # (M, N)
    in_real = d_fr <= radii(real, pr_k)[None, :]
    in_fake = d_fr.T <= radii(fake, pr_k)[None, :]
    in_dc = d_fr <= radii(real, dc_k)[None, :]
    return {"precision": in_real.any(1).mean(), "recall": in_fake.any(1).mean(),
            "density": in_dc.sum() / (dc_k * len(fake)), "coverage": in_dc.any(0).mean()}


@pytest.mark.parametrize("pr_k,dc_k", [(3, 5), (1, 2), (4, 4)])
def test_matches_brute_force_and_does_not_depend_on_the_block_size(monkeypatch, pr_k, dc_k):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 6)) + 50.0  # far from the origin: rounding is tested too
    fake = rng.normal(0.3, 1.2, size=(90, 6)) + 50.0
    expected = brute_force(real, fake, pr_k, dc_k)
    whole = manifold_scores(real, fake, pr_k=pr_k, dc_k=dc_k)
    monkeypatch.setattr(manifold, "BLOCK_BYTES", 8 * 120 * 7)  # 7 rows per block
    blocked = manifold_scores(real, fake, pr_k=pr_k, dc_k=dc_k)
    for key, value in expected.items():
        assert whole[key] == pytest.approx(value) == blocked[key], key


def test_too_few_samples_and_bad_shapes_raise():
    rng = np.random.default_rng(1)
    assert manifold_min_count(3, 5) == 6
    with pytest.raises(ValueError, match="more than 5"):
        manifold_scores(rng.normal(size=(5, 2)), rng.normal(size=(50, 2)))
    with pytest.raises(ValueError, match="-d"):
        manifold_scores(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)))
    with pytest.raises(ValueError, match="k must be"):
        knn_radii(rng.normal(size=(50, 2)), 0)


# ---------------------------------------------------------------- known behaviour

def gaussian(n, seed, dim=2, shift=0.0):
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def test_identical_sets_score_one_exactly():
    real = gaussian(500, 2, dim=8) + 100.0
    got = manifold_scores(real, real.copy(), pr_k=3, dc_k=5)
    assert got["precision"] == got["recall"] == got["coverage"] == 1.0
    # each ball holds its own centre and its k neighbours: density (k + 1) / k
    assert got["density"] == pytest.approx(6 / 5)


def test_same_distribution_scores_near_one():
    got = manifold_scores(gaussian(1000, 3), gaussian(1000, 4))
    assert got["precision"] > 0.9 and got["recall"] > 0.9
    assert got["density"] == pytest.approx(1.0, abs=0.1)  # E[density] = 1 (Naeem et al.)
    # E[coverage] = 1 - prod_{i<k} (N-1-i)/(M+N-1-i) ~ 1 - 2^-k for M = N
    assert got["coverage"] == pytest.approx(1 - 0.5 ** 5, abs=0.02)


def test_collapsed_fakes_have_fidelity_without_variety():
    real = gaussian(1000, 5)
    collapsed = np.zeros((1000, 2))  # every fake at one point of the real support (the mode)
    got = manifold_scores(real, collapsed)
    assert got["precision"] == 1.0
    assert got["recall"] < 0.01 and got["coverage"] < 0.05


def test_shifted_fakes_lose_precision_and_coverage():
    real = gaussian(1000, 6)
    near, far = gaussian(1000, 7, shift=1.0), gaussian(1000, 7, shift=5.0)
    same = manifold_scores(real, gaussian(1000, 7))
    got_near, got_far = manifold_scores(real, near), manifold_scores(real, far)
    assert got_far["precision"] < 0.05 and got_far["coverage"] < 0.05
    assert got_far["density"] < 0.05
    for key in ("precision", "recall", "density", "coverage"):
        assert got_far[key] < got_near[key] < same[key], key


def test_a_narrow_fake_set_keeps_precision_loses_recall():
    real = gaussian(1000, 8)
    narrow = 0.3 * gaussian(1000, 9)  # inside the real support, a fraction of its spread
    got = manifold_scores(real, narrow)
    assert got["precision"] > 0.95
    assert got["recall"] < 0.5 and got["coverage"] < 0.5
    # k-NN balls shrink where reals are dense, so each fake inside the support still sits in
    # about k balls: density stays near 1 and says "faithful", recall and coverage "narrow"
    assert got["density"] == pytest.approx(1.0, abs=0.2)
