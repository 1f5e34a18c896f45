"""Rejection subsampling by a density ratio, one class or label at a time (METHOD.md section 4).

Proposals come from q (the generator at one label); accepting each with probability
psi / M, psi ~ p / q and M >= sup psi, turns them into draws from p (the real data at that
label). M is not known, so a burn-in estimates it and every later batch may raise it; the
burn-in's proposals may themselves be accepted once it has set M (``reuse_burnin``).
Batches are tensors or tuples/lists/dicts of tensors sharing their first dimension, so a
sample can carry a payload (its label, its id) through the sampler.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cgankd.errors import CgankdInputError

Samples = Any  # a tensor, or a tuple / list / dict of tensors with a common first dimension


@dataclass
class RejectionResult:
    """What rejection_sample returns; ``samples`` is None when a sink took them."""

    samples: Samples | None
    psi: torch.Tensor   # (n_keep,) ratios of the kept samples, in acceptance order
    stats: dict[str, Any]  # name, burnin, burnin_accepted, proposed, accepted, acceptance_rate, M


def take(batch: Samples, rows: torch.Tensor) -> Samples:
    """``rows`` (row numbers or a bool mask) of every tensor in ``batch``."""
    if isinstance(batch, torch.Tensor):
        return batch[rows.to(batch.device)]
    if isinstance(batch, dict):
        return {key: take(value, rows) for key, value in batch.items()}
    return _rebuild(batch, [take(part, rows) for part in batch])


def concat(batches: list[Samples]) -> Samples:
    """Concatenate same-structured batches along the first dimension."""
    first = batches[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(batches)
    if isinstance(first, dict):
        return {key: concat([b[key] for b in batches]) for key in first}
    return _rebuild(first, [concat(list(parts)) for parts in zip(*batches)])


def _rebuild(like: Samples, parts: list[Any]) -> Samples:
    """A list/tuple (or namedtuple, whose constructor takes fields, not one iterable) of parts."""
    return getattr(type(like), "_make", type(like))(parts)


def _checked_psi(ratio: Callable[[Samples], torch.Tensor], batch: Samples, n: int,
                 name: str) -> torch.Tensor:
    psi = ratio(batch).detach().reshape(-1).float()
    if psi.numel() != n:
        raise CgankdInputError(f"rejection sampling for {name}: ratio gave {psi.numel()} values "
                               f"for {n} proposals")
    if not torch.isfinite(psi).all() or (psi < 0).any():
        raise CgankdInputError(f"rejection sampling for {name}: ratio gave negative or non-finite "
                               f"values; a density ratio must be finite and >= 0")
    return psi


@torch.no_grad()  # sampling never backpropagates; this keeps generator graphs out of memory
def rejection_sample(propose: Callable[[int], Samples], ratio: Callable[[Samples], torch.Tensor],
                     n_keep: int, *, batch_size: int, n_burnin: int, max_batches: int,
                     generator: torch.Generator, reuse_burnin: bool, name: str = "samples",
                     sink: Callable[[Samples], None] | None = None) -> RejectionResult:
    """Keep exactly ``n_keep`` of ``propose``'s samples, each accepted with prob. psi / M.

    propose(n) draws n proposals; ratio(batch) gives their (n,) psi >= 0. Burn-in: n_burnin
    proposals, scored in chunks of batch_size, set M = max psi. With ``reuse_burnin`` they are
    then candidates too: each is accepted with probability psi / M under that M, exactly as a
    later batch is (whose running-max update also lets each sample raise its own M); without
    it they are discarded, as in the published sampler. To accept under the final burn-in M,
    the burn-in's (samples, psi) are held until M is known: at most n_burnin samples, the same
    memory as one n_burnin-sized batch. Then each batch of batch_size raises M to
    max(M, max psi) before accepting with a uniform from ``generator``, until n_keep are
    accepted; the last accepting batch is trimmed to exactly n_keep.
    With ``sink``, each batch of accepted samples goes to sink(batch) as soon as it is
    accepted and the result holds no samples, so nothing large stays in memory.
    stats: burnin (proposals), burnin_accepted (samples kept from the burn-in), proposed
    (post-burn-in proposals), accepted, acceptance_rate (everything accepted before the trim
    over every candidate offered, an estimate of the final rate 1 / M), M, reuse_burnin.
    Raises CgankdInputError naming ``name`` when every burn-in psi is 0 or when max_batches
    batches do not reach n_keep.
    """
    if n_keep < 1 or batch_size < 1 or n_burnin < 1 or max_batches < 1:
        raise CgankdInputError(f"rejection sampling for {name}: n_keep, batch_size, n_burnin and "
                               f"max_batches must be >= 1, got {n_keep}, {batch_size}, "
                               f"{n_burnin}, {max_batches}")
    bound = 0.0  # M, the running estimate of sup psi
    burnin: list[tuple[Samples, torch.Tensor]] = []  # (samples, psi), held only when reused
    for start in range(0, n_burnin, batch_size):
        n = min(batch_size, n_burnin - start)
        batch = propose(n)
        psi = _checked_psi(ratio, batch, n, name)
        bound = max(bound, psi.max().item())
        if reuse_burnin:
            burnin.append((batch, psi))
    if bound <= 0.0:
        raise CgankdInputError(f"rejection sampling for {name}: every psi of the {n_burnin} "
                               f"burn-in proposals is 0, nothing can be accepted; check the "
                               f"density-ratio model")

    kept_samples: list[Samples] = []
    kept_psi: list[torch.Tensor] = []
    n_kept = n_accepted = n_offered = 0

    def offer(batch: Samples, psi: torch.Tensor) -> bool:
        """Accept from one scored batch under the current M; True once n_keep are kept."""
        nonlocal n_kept, n_accepted, n_offered
        uniform = torch.rand(len(psi), generator=generator, device=generator.device)
        accepted = (uniform.to(psi.device) < psi / bound).nonzero().squeeze(1)
        n_offered += len(psi)
        n_accepted += accepted.numel()
        accepted = accepted[: n_keep - n_kept]
        if accepted.numel():
            chosen = take(batch, accepted)
            if sink is None:
                kept_samples.append(chosen)
            else:
                sink(chosen)
            kept_psi.append(psi[accepted])
            n_kept += accepted.numel()
        return n_kept == n_keep

    done = False
    while burnin and not done:
        done = offer(*burnin.pop(0))  # popped: each burn-in batch is freed once offered
    burnin.clear()
    n_burnin_kept = n_kept
    n_proposed = 0
    while not done:
        if n_proposed == max_batches * batch_size:
            raise CgankdInputError(
                f"rejection sampling for {name}: accepted only {n_kept} of {n_keep} after "
                f"max_batches={max_batches} batches of {batch_size} (acceptance rate "
                f"{n_accepted / n_offered:.2e}); raise max_batches or check the "
                f"density-ratio model")
        batch = propose(batch_size)
        psi = _checked_psi(ratio, batch, batch_size, name)
        bound = max(bound, psi.max().item())
        n_proposed += batch_size
        done = offer(batch, psi)

    stats = {"name": name, "burnin": n_burnin, "burnin_accepted": n_burnin_kept,
             "proposed": n_proposed, "accepted": n_kept,
             "acceptance_rate": n_accepted / n_offered, "M": bound,
             "reuse_burnin": bool(reuse_burnin)}
    samples = None if sink is not None else concat(kept_samples)
    return RejectionResult(samples=samples, psi=torch.cat(kept_psi), stats=stats)


def window_labels(y: float | torch.Tensor, zeta: float, n: int,
                  generator: torch.Generator) -> torch.Tensor:
    """n labels y' ~ U[y - zeta, y + zeta] with the window clipped to [0, 1] (cDR-RS window).

    The window is clipped before drawing (uniform on [max(0, y - zeta), min(1, y + zeta)])
    rather than clamping the draws, which would pile probability mass on exactly 0 and 1.
    A tensor y (n entries; the DR fit's real labels) gives one y' in each entry's window, on
    y's device.
    """
    if isinstance(y, torch.Tensor):
        y = y.reshape(-1)
        if len(y) != n or zeta < 0 or bool(((y < 0) | (y > 1)).any()):
            raise CgankdInputError(f"label window needs {n} labels in [0, 1] and zeta >= 0, "
                                   f"got {len(y)} in [{y.min().item()}, {y.max().item()}], "
                                   f"zeta={zeta}")
        low, high = (y - zeta).clamp(min=0.0), (y + zeta).clamp(max=1.0)
        uniform = torch.rand(n, generator=generator, device=generator.device).to(y.device)
        return low + (high - low) * uniform
    low, high = max(0.0, y - zeta), min(1.0, y + zeta)
    if not 0.0 <= y <= 1.0 or zeta < 0:
        raise CgankdInputError(f"label window needs y in [0, 1] and zeta >= 0, got y={y}, "
                               f"zeta={zeta}")
    uniform = torch.rand(n, generator=generator, device=generator.device)
    return low + (high - low) * uniform


def in_window(pred: torch.Tensor, y: float | torch.Tensor, zeta: float) -> torch.Tensor:
    """Bool mask: predicted labels within zeta of y (|pred - y| <= zeta), the consistency check."""
    if isinstance(y, torch.Tensor):
        y = y.reshape(-1)  # per-sample targets as rows, so (N, 1) never broadcasts to (N, N)
    return (pred.reshape(-1) - y).abs() <= zeta
