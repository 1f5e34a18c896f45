"""Fréchet distance between Gaussian fits of feature sets, and the streaming embedding it needs.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), the Fréchet (2-Wasserstein) distance
between N(mu1, S1) and N(mu2, S2). Here the features come from a net trained on the dataset's
own real images (its pooled embedding), not from Inception: nothing is downloaded, and the
feature space suits 8x8 digits as well as 64 px faces.
"""

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import linalg

from cgankd.conventions import to_float

SQRTM_EPS = 1e-6  # diagonal offset when S1 S2 is singular (the reference implementation's eps)
IMAG_ATOL = 1e-3  # larger imaginary parts on sqrtm's diagonal mean a numerical failure


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of ``features`` (N, D), computed in float64."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"feature_stats needs (N >= 2, D) features, got shape {feats.shape}")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray | None:
    """Real (sigma1 sigma2)^(1/2), or None when the product is singular (no reliable root)."""
    with warnings.catch_warnings():
        # Newer scipy warns on a singular product where older versions return non-finite
        # values: either way the root is unreliable.
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(sigma1 @ sigma2)
        except linalg.LinAlgWarning:
            return None
    if not np.isfinite(covmean).all():
        return None
    if np.iscomplexobj(covmean):
        worst = np.abs(np.diagonal(covmean).imag).max()
        if worst > IMAG_ATOL:
            raise ValueError(f"frechet_distance: sqrtm left an imaginary component of {worst:.3g}")
        covmean = covmean.real
    return covmean


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); >= 0, 0 for equal stats.

    A singular product (fewer samples than feature dimensions, dead ReLU features) is handled
    as the reference implementation does, by adding eps * I to both covariances; unlike it, the
    offset also enters the traces, so the result is the exact distance between the shifted
    Gaussians (identical stats still give 0) instead of one biased by about -2 * D * eps.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"frechet_distance: shapes disagree: mu {mu1.shape} / {mu2.shape}, "
                         f"sigma {sigma1.shape} / {sigma2.shape}")
    covmean = _sqrtm_product(sigma1, sigma2)
    if covmean is None:
        offset = np.eye(len(sigma1)) * SQRTM_EPS
        sigma1, sigma2 = sigma1 + offset, sigma2 + offset
        covmean = _sqrtm_product(sigma1, sigma2)
        if covmean is None:
            raise ValueError("frechet_distance: no matrix square root even with the eps offset")
    diff = mu1 - mu2
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(fid, 0.0))  # rounding can leave -1e-12 for identical stats


@torch.no_grad()
def _stream(rows_of: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], images: Any,
            batch_size: int, device: torch.device | str) -> tuple[np.ndarray, ...]:
    """``rows_of(float batch)``'s tensors, each flattened to (N, D) float32, over uint8
    ``images`` read one batch at a time (so a set larger than memory can be measured)."""
    n = len(images)
    arrays = None
    for start in range(0, n, batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        parts = [t.reshape(len(batch), -1).float().cpu().numpy()
                 for t in rows_of(to_float(batch.to(device)))]
        if arrays is None:  # sizes are known after the first batch: fill preallocated arrays
            arrays = [np.empty((n, p.shape[1]), np.float32) for p in parts]
        for array, part in zip(arrays, parts):
            array[start:start + len(batch)] = part
    if arrays is None:
        raise ValueError("embed: no images given")
    return tuple(arrays)


def embed_with_outputs(net: torch.nn.Module, images: Any, batch_size: int,
                       device: torch.device | str) -> tuple[np.ndarray, np.ndarray]:
    """(pooled embeddings (N, D) float32, head outputs (N, K) float32) of uint8 ``images``.

    ``images`` is anything sliceable along its first axis to uint8 (n, C, H, W) arrays: a numpy
    array or an open h5py dataset. The net runs in eval mode.
    """
    was_training = net.training
    net.eval()

    def rows_of(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, feats = net(x, return_features=True)
        return feats[-1], out
    try:
        return _stream(rows_of, images, batch_size, device)
    finally:
        net.train(was_training)


def embed_extractor(extractor: torch.nn.Module, images: Any, batch_size: int,
                    device: torch.device | str) -> np.ndarray:
    """The cDR-RS extractor's features h (N, C*H*W) float32 of uint8 ``images`` (a frozen
    extractor in eval mode: ``cgankd.dre.dre_file`` loads them so)."""
    return _stream(lambda x: (extractor(x)[1],), images, batch_size, device)[0]


def embed(net: torch.nn.Module, images: Any, batch_size: int,
          device: torch.device | str) -> np.ndarray:
    """Pooled embeddings (``feats[-1]``, (N, D) float32) of uint8 ``images``, batch by batch."""
    return embed_with_outputs(net, images, batch_size, device)[0]
