"""Fidelity and variety of a sample set, separately, from k-nearest-neighbour balls.

FID folds two failures into one number: fakes off the real data (fidelity) and fakes that
cover only part of it (variety). These estimators keep them apart by approximating each set's
support with the union of balls B(x, NND_k(x)), NND_k(x) = distance from x to its k-th nearest
neighbour in its own set (itself excluded). Balls are closed: a point on a sphere is inside.

- precision (Kynkaanniemi et al., NeurIPS 2019): the fraction of fakes inside the real support;
- recall (same paper): the fraction of reals inside the fake support;
- density (Naeem et al., ICML 2020): (1 / (k M)) sum_j sum_i 1[fake j in B(real i)], how many
  real balls hold each fake, on average, divided by k: about 1 when the fakes follow the real
  distribution, above 1 when they crowd where the reals are dense, and robust to outlying
  reals that blow up a ball (precision's weakness);
- coverage (same paper): the fraction of real balls that hold at least one fake; unlike recall
  it does not use the fakes' own balls, which a few outlying fakes make huge.

Distances are Euclidean, computed in float64 in blocks of rows, so two 10k-sample sets (a
10k x 10k matrix would take 800 MB) need only BLOCK_BYTES at a time.
"""

from collections.abc import Sequence

import numpy as np

# The neighbourhood sizes are quality.options defaults, defined with them (torch-free).
from cgankd.stage_options.quality import DC_K, PR_K

BLOCK_BYTES = 32 << 20  # float64 distances held at once (twice: values and slack): 32 MiB each
# Membership slack, relative to |a|^2 + |b|^2: the expanded distance of the same pair of
# points differs by ~1e-16 of that between two passes (BLAS sums in blocks), which would put a
# point lying exactly on a sphere (a set's own k-th neighbour) inside or outside by chance.
SLACK = 1e-10


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    feats = np.asarray(x, np.float64)
    if feats.ndim != 2:
        raise ValueError(f"{name}: features must be (N, D), got shape {feats.shape}")
    return feats


def _row_blocks(n_rows: int, n_cols: int):
    """Consecutive row slices whose (rows x n_cols) float64 block fits BLOCK_BYTES."""
    step = max(1, BLOCK_BYTES // (8 * max(1, n_cols)))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _sq_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(squared Euclidean distances (len(a), len(b)), |a|^2 + |b|^2): the expansion
    |a|^2 + |b|^2 - 2ab, clipped at 0 (it can round a zero distance to -1e-12), and the scale
    its rounding error is relative to."""
    scale = (a * a).sum(1)[:, None] + b_sq[None, :]
    d = scale - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d), scale


def knn_radii(feats: np.ndarray, ks: int | Sequence[int]) -> np.ndarray:
    """NND_k of every row of ``feats``: distance to its k-th nearest other row.

    ``ks`` one k gives (N,); several give (len(ks), N), from one pass over the distances.
    Needs N > max(ks) (each point needs k neighbours besides itself).
    """
    feats = _as_features(feats, "knn_radii")
    single = np.ndim(ks) == 0
    ks = np.atleast_1d(np.asarray(ks, int))
    if ks.min() < 1:
        raise ValueError(f"knn_radii: k must be >= 1, got {ks.tolist()}")
    kmax = int(ks.max())
    if len(feats) <= kmax:
        raise ValueError(f"knn_radii: k = {kmax} needs more than {kmax} samples, got "
                         f"{len(feats)}")
    feats = feats - feats.mean(0)  # distances are translation-free; centring shrinks rounding
    sq = (feats * feats).sum(1)
    radii = np.empty((len(ks), len(feats)))
    for rows in _row_blocks(len(feats), len(feats)):
        d, _ = _sq_distances(feats[rows], feats, sq)
        # column 0 of the sorted row is the point itself (distance 0): the k-th neighbour
        # is column k. np.partition puts the kmax+1 smallest first, unordered: sort those.
        nearest = np.sort(np.partition(d, kmax, axis=1)[:, :kmax + 1], axis=1)
        radii[:, rows] = np.sqrt(nearest[:, ks].T)
    return radii[0] if single else radii


def ball_hits(points: np.ndarray, centres: np.ndarray,
              radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which points lie in which closed balls B(centres[i], radii[i]).

    ``radii`` (Nc,) or (R, Nc): R sets of radii around the same centres, one distance pass.
    Returns (per point: how many balls hold it, (Np,) or (R, Np); per ball: how many points it
    holds, (Nc,) or (R, Nc)), int64.
    """
    points = _as_features(points, "ball_hits points")
    centres = _as_features(centres, "ball_hits centres")
    single = np.ndim(radii) == 1
    sq_radii = np.atleast_2d(np.asarray(radii, np.float64)) ** 2
    if sq_radii.shape[1] != len(centres):
        raise ValueError(f"ball_hits: {sq_radii.shape[1]} radii for {len(centres)} centres")
    per_point = np.zeros((len(sq_radii), len(points)), np.int64)
    per_ball = np.zeros((len(sq_radii), len(centres)), np.int64)
    centre_sq = (centres * centres).sum(1)
    for rows in _row_blocks(len(points), len(centres)):
        d, scale = _sq_distances(points[rows], centres, centre_sq)
        d -= SLACK * scale
        for r, sq_r in enumerate(sq_radii):
            inside = d <= sq_r[None, :]
            per_point[r, rows] = inside.sum(1)
            per_ball[r] += inside.sum(0)
    return (per_point[0], per_ball[0]) if single else (per_point, per_ball)


def manifold_scores(real: np.ndarray, fake: np.ndarray, *, pr_k: int = PR_K,
                    dc_k: int = DC_K) -> dict[str, float]:
    """Precision, recall (k = ``pr_k``), density and coverage (k = ``dc_k``) of ``fake``
    against ``real`` features. Needs more than max(pr_k, dc_k) reals and more than pr_k fakes."""
    real = _as_features(real, "manifold_scores real")
    fake = _as_features(fake, "manifold_scores fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"manifold_scores: real features are {real.shape[1]}-d, fake ones "
                         f"{fake.shape[1]}-d")
    centre = real.mean(0)  # distances are translation-free; centring shrinks rounding errors
    real, fake = real - centre, fake - centre
    real_radii = knn_radii(real, [pr_k, dc_k])  # (2, N): one pass for both neighbourhoods
    fake_radii = knn_radii(fake, pr_k)
    fake_in_real, reals_holding = ball_hits(fake, real, real_radii)
    real_in_fake, _ = ball_hits(real, fake, fake_radii)
    return {
        "precision": float(np.mean(fake_in_real[0] > 0)),
        "recall": float(np.mean(real_in_fake > 0)),
        "density": float(fake_in_real[1].sum() / (dc_k * len(fake))),
        "coverage": float(np.mean(reals_holding[1] > 0)),
    }


def manifold_min_count(pr_k: int = PR_K, dc_k: int = DC_K) -> int:
    """The fewest samples a set needs on each side for ``manifold_scores``."""
    return max(pr_k, dc_k) + 1
