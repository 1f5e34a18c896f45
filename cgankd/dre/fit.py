"""Training loop of the conditional DR model on feature vectors (METHOD.md section 3).

Generic on purpose: features in, loss curves out. The caller supplies the real feature
batches (extractor applied to real images) and a function that makes fake features at given
labels (generator + extractor), so this module knows nothing of GANs, extractors or files.

Held-out selection: with few real images the DR MLP can memorise them, and its psi then
favours fakes that look like those few training images rather than like the real
distribution. Given held-out real features and fakes at their labels, the fit scores SP on
them every ``val_every`` epochs (epoch 0, psi = 1 everywhere, included) and keeps the best
state; a fit that never beats the flat ratio returns psi = 1, i.e. subsampling changes nothing.

Resumable: given a ``cgankd.train.resume.Resume``, the fit checkpoints at epoch ends (model,
optimiser, schedule, curves, selection and the random generators it draws from), and a
``checkpoint`` the caller loaded from it continues bit for bit.

Fakes: ``fake_sampler`` turns the caller's "features of fakes at these labels" function into
the fit's ``fake_batch``, either as published (fresh fakes every step) or from a bank made once
before the fit (options ``fakes`` and ``bank_per_real``). For regression ``windowed`` wraps
that function into cDR-RS's label window (the fake for a real y made at y' in [y - zeta,
y + zeta], remade while the autoencoder's label falls outside, then dropped with its real
partner; psi conditioned on y), and ``balanced_batches`` draws label-balanced real batches;
the published sources are cited at FIT_DEFAULTS (cgankd/stage_options/dre.py).
"""

import contextlib
import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cgankd.dre.loss import penalised_softplus_loss
from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.sampling import in_window, window_labels
from cgankd.train.resume import Resume, restore_rng, rng_state
from cgankd.stage_options.dre import FIT_DEFAULTS

Batch = tuple[torch.Tensor, torch.Tensor]  # (features h, labels or label codes)
# Held-out (h_real, y_real, h_fake, y_fake): real features not used for fitting, and fakes at
# their labels, fixed for the whole fit so every evaluation sees the same samples.
Heldout = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# make(labels, generator) -> features of one fake per label, drawing from ``generator``; or
# (features, keep): keep marks the fakes that passed the label window (``windowed``)
MakeFakes = Callable[[torch.Tensor, torch.Generator], Any]
# make(labels, generator) -> (features, predicted normalised label) of one fake per label
MakeScored = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

# Labels per call when a bank is made: the stage's embedding batch.
BANK_CHUNK = 512
# A bank larger than this is refused (one line naming the option) instead of exhausting memory.
BANK_MAX_BYTES = 4 * 2**30

# The fit's options are defined torch-free beside the stage's (plan-time checks).
DEFAULTS = FIT_DEFAULTS


@contextlib.contextmanager
def flushed_denormals():
    """CPU denormals read as zero inside (torch.set_flush_denormal); off again after, torch's
    default (torch has no getter for the mode before)."""
    torch.set_flush_denormal(True)  # False where the CPU lacks the mode: nothing changes
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class FakeBank:
    """Fake features made once, grouped by label; ``sample(y)`` draws one per y at that label.

    Labels are matched exactly (class ids, or the real training set's regression labels, at
    which the bank was made), so every batch label must be one of the bank's.
    """

    def __init__(self, h: torch.Tensor, y: torch.Tensor):
        values, group, counts = torch.unique(y, return_inverse=True, return_counts=True)
        order = torch.argsort(group, stable=True)
        self.h, self.values = h[order], values
        # group sizes and starts on the CPU, beside the CPU generator that picks within them
        self.counts = counts.cpu()
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    @classmethod
    def build(cls, make: MakeFakes, labels: torch.Tensor, per_label: int,
              generator: torch.Generator, where: str = "dre.fit") -> "FakeBank":
        """per_label fakes for each entry of ``labels`` (repeats make larger groups); a make
        that returns (features, keep) banks only the kept fakes, under the label asked for."""
        labels = labels.reshape(-1)
        y = labels.repeat(per_label)
        h, kept = [], []
        for i, chunk in enumerate(y.split(BANK_CHUNK)):
            made = make(chunk, generator)
            feats, keep = made if isinstance(made, tuple) else (made, None)
            if i == 0:  # the first chunk shows the feature size: check before memory is spent
                size = len(y) * feats[0].numel() * feats.element_size()
                if size > BANK_MAX_BYTES:
                    raise CgankdInputError(
                        f"{where}.bank_per_real: a bank of {len(y)} fakes needs "
                        f"{size / 2**30:.1f} GiB (limit {BANK_MAX_BYTES / 2**30:.0f}); lower "
                        f"it or use fakes: on_the_fly")
            h.append(feats if keep is None else feats[keep])
            kept.append(chunk if keep is None else chunk[keep.to(chunk.device)])
        y_kept = torch.cat(kept)
        lost = labels[~torch.isin(labels, y_kept)]
        if len(lost):
            raise CgankdInputError(f"{where}.label_window: none of the {per_label} banked fakes "
                                   f"at label {lost[0].item():.6g} passed the autoencoder's label "
                                   f"check; raise bank_per_real or window_retries")
        return cls(torch.cat(h), y_kept)

    def sample(self, y: torch.Tensor, generator: torch.Generator) -> Batch:
        """(one bank feature per entry of y at its label, y); uniform within each label."""
        values = self.values.to(y.device)
        group = torch.searchsorted(values, y.reshape(-1)).clamp(max=len(values) - 1)
        missing = values[group] != y.reshape(-1)
        if missing.any():
            raise CgankdInputError(f"fake bank: label {y.reshape(-1)[missing][0].item()!r} "
                                   f"is not one the bank was made at")
        group = group.cpu()
        offset = (torch.rand(len(group), generator=generator) * self.counts[group]).long()
        rows = self.starts[group] + torch.minimum(offset, self.counts[group] - 1)
        return self.h[rows.to(self.h.device)], y


def windowed(make: MakeScored, zeta: float, retries: int) -> MakeFakes:
    """cDR-RS's label window around make: for each label y, a fake generated at y' ~ U[y -
    zeta, y + zeta] (clipped to [0, 1]); those whose predicted label (clamped to [0, 1]) lies
    outside the window are remade at the same y' with fresh noise, up to ``retries`` rounds.
    Returns make'(y, generator) -> (features, keep), keep marking the fakes inside."""
    def make_windowed(y: torch.Tensor, generator: torch.Generator):
        y = y.reshape(-1)
        drawn = window_labels(y, zeta, len(y), generator)
        h, pred = make(drawn, generator)
        y = y.to(pred.device)
        keep = in_window(pred.clamp(0, 1), y, zeta)
        for _ in range(retries):
            redo = (~keep).nonzero().reshape(-1)
            if len(redo) == 0:
                break
            h_new, pred_new = make(drawn[redo.to(drawn.device)], generator)
            h[redo.to(h.device)] = h_new
            keep[redo] = in_window(pred_new.clamp(0, 1), y[redo], zeta)
        return h, keep
    return make_windowed


def balanced_batches(labels: torch.Tensor, batch: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of label-balanced row batches, as published for regression: max(1, N //
    batch) batches, each of ``batch`` labels drawn uniformly with replacement among the
    distinct ``labels``, each then an index drawn uniformly among the rows with that label."""
    values, group, counts = torch.unique(labels.reshape(-1).cpu(), return_inverse=True,
                                         return_counts=True)
    order = torch.argsort(group, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    n = max(1, len(group) // batch) * batch
    pick = torch.randint(len(values), (n,), generator=generator)
    offset = (torch.rand(n, generator=generator) * counts[pick]).long()
    rows = order[starts[pick] + torch.minimum(offset, counts[pick] - 1)]
    return list(rows.to(labels.device).split(batch))


def fake_sampler(make: MakeFakes, labels: torch.Tensor, options: Mapping[str, Any] | None, *,
                 generator: torch.Generator, bank_generator: torch.Generator,
                 where: str = "dre.fit") -> Callable[[torch.Tensor], Batch]:
    """The fit's ``fake_batch``: per options ``fakes``, fresh fakes from make(y, generator)
    every call (published), or draws (from ``generator``) from a FakeBank of bank_per_real
    fakes per entry of ``labels`` (the real training labels), made now from
    ``bank_generator``, whose seed alone fixes the bank (a resumed fit re-makes it).
    A ``windowed`` make: fresh fakes come as (h, y, keep), y the real labels psi is
    conditioned on; the bank holds only kept fakes, filed under the real label."""
    opts = merge_options(DEFAULTS, options, where)
    if opts["fakes"] == "on_the_fly":
        def fresh(y: torch.Tensor):
            made = make(y, generator)
            if not isinstance(made, tuple):
                return made, y
            if not made[1].any():
                raise CgankdInputError(f"{where}.label_window: no fake of a batch of {len(y)} "
                                       f"passed the autoencoder's label check; raise "
                                       f"window_retries or zeta_mult")
            return made[0], y, made[1]
        return fresh
    if opts["fakes"] != "bank":
        raise CgankdInputError(f"{where}.fakes: {opts['fakes']!r} is not one of on_the_fly, bank")
    bank = FakeBank.build(make, labels, int(opts["bank_per_real"]), bank_generator, where)
    return lambda y: bank.sample(y, generator)


def fit_density_ratio(model: nn.Module, real_batches: Callable[[], Iterable[Batch]],
                      fake_batch: Callable[[torch.Tensor], Batch], *,
                      label_code: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      train_label_code: bool = False,
                      options: Mapping[str, Any] | None = None,
                      heldout: Heldout | None = None,
                      where: str = "dre", resume: Resume | None = None,
                      checkpoint: Mapping[str, Any] | None = None,
                      generators: Sequence[torch.Generator] = (),
                      carry: Mapping[str, Any] | None = None) -> list[dict[str, float]]:
    """Train ``model`` (psi(h, code), e.g. a DRMLP) in place; return one loss dict per epoch.

    real_batches() is called once per epoch and yields (h_real, y_real). For each, the fakes
    are made at the same labels, as published: fake_batch(y_real) -> (h_fake, y_fake), or
    (h_fake, y_fake, keep): pairs whose keep is False are dropped, real and fake alike.
    label_code maps a y to the code psi is conditioned on (ClassLabelCode for classes, the
    CcGAN's y2h for regression); without it the y's are used as codes directly. Its
    parameters are trained alongside the model only when train_label_code is True (the
    class embedding), never otherwise (y2h belongs to the GAN and stays frozen).
    options override DEFAULTS; ``where`` names the config section in error messages.
    With ``heldout`` and options val_every > 0 (the default), held-out SP is logged
    (``val_sp``) and the model (and trained label code) of the best evaluation is restored
    at the end; the last curve row then carries ``selected_epoch`` and ``selected_val_sp``.
    Leaves the model in eval mode (dropout off), ready to score samples.
    ``resume`` checkpoints at epoch ends, with ``carry`` (the caller's values) and the states
    of ``generators`` (those real_batches and fake_batch draw from); ``checkpoint``, loaded
    from it, is where the fit continues.
    """
    opts = merge_options(DEFAULTS, options, where)
    val_every = int(opts["val_every"])
    if val_every < 0:
        raise CgankdInputError(f"{where}.val_every must be >= 0, got {val_every}")
    if heldout is None:
        val_every = 0
    device = next(model.parameters()).device
    params = list(model.parameters())
    if train_label_code:
        if not isinstance(label_code, nn.Module):
            raise CgankdInputError(f"{where}: train_label_code needs a label_code module, "
                                   f"got {type(label_code).__name__}")
        params += list(label_code.parameters())
    optimiser = torch.optim.Adam(params, lr=opts["lr"], betas=tuple(opts["betas"]),
                                 weight_decay=opts["weight_decay"])
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, list(opts["milestones"]),
                                                    gamma=opts["gamma"])

    def encode(y: torch.Tensor) -> torch.Tensor:
        y = y.to(device)
        if label_code is None:
            return y
        with torch.set_grad_enabled(train_label_code):
            return label_code(y)

    def ratios(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(h.to(device), encode(y))

    trained = [model] + ([label_code] if train_label_code else [])

    def heldout_sp() -> float:
        """SP on the held-out pairs, dropout off (the model as it would score samples)."""
        h_real, y_real, h_fake, y_fake = heldout
        for net in trained:
            net.eval()
        with torch.no_grad():
            _, parts = penalised_softplus_loss(ratios(h_real, y_real), ratios(h_fake, y_fake))
        for net in trained:
            net.train()
        return parts["sp"]

    best = None  # (held-out SP, epoch, state dicts of the trained modules)
    if val_every:
        best = (heldout_sp(), 0, [copy.deepcopy(net.state_dict()) for net in trained])

    curves: list[dict[str, float]] = []
    first = 1
    if checkpoint is not None:
        for net, state in zip(trained, checkpoint["trained"]):
            net.load_state_dict(state)
        optimiser.load_state_dict(checkpoint["optimiser"])
        schedule.load_state_dict(checkpoint["schedule"])
        curves, first = list(checkpoint["history"]), int(checkpoint["epoch"]) + 1
        if checkpoint["best"] is not None:
            best = (checkpoint["best"]["sp"], checkpoint["best"]["epoch"],
                    checkpoint["best"]["states"])
        restore_rng(checkpoint["rng"], generators, device)
    model.train()
    epochs = int(opts["epochs"])
    # Values of the fit drift into the denormal range as it trains, where CPU arithmetic is
    # many times slower: on the digits default its steps grew 4.6x slower after epoch 100 (a
    # banked fit took 124 s CPU; 34 s with denormals flushed, with the same selected epoch
    # and held-out SP to the last digit).
    with flushed_denormals():
        for epoch in range(first, epochs + 1):
            lr = optimiser.param_groups[0]["lr"]
            sums: dict[str, float] = {}
            count = 0
            for h_real, y_real in real_batches():
                h_fake, y_fake, *keep = fake_batch(y_real)
                if keep:  # fakes outside their label window go, with their real partners
                    keep = keep[0].to(h_real.device)
                    h_real, y_real, h_fake, y_fake = (h_real[keep], y_real[keep],
                                                      h_fake[keep], y_fake[keep])
                loss, parts = penalised_softplus_loss(ratios(h_real, y_real),
                                                      ratios(h_fake, y_fake), lam=opts["lam"])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
            if count == 0:
                raise CgankdInputError(f"{where}: real_batches() yielded no batch in epoch {epoch}")
            schedule.step()
            curves.append({"epoch": epoch, "lr": lr, "batches": count,
                           **{key: total / count for key, total in sums.items()}})
            if val_every and (epoch % val_every == 0 or epoch == epochs):
                curves[-1]["val_sp"] = heldout_sp()
                if curves[-1]["val_sp"] < best[0]:
                    best = (curves[-1]["val_sp"], epoch,
                            [copy.deepcopy(net.state_dict()) for net in trained])
            if resume is not None and resume.due(epoch, epochs):
                resume.save({**(carry or {}), "epoch": epoch,
                             "trained": [net.state_dict() for net in trained],
                             "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                             "best": None if best is None else
                             {"sp": best[0], "epoch": best[1], "states": best[2]},
                             "rng": rng_state(generators, device)}, curves)
                resume.stop_if_asked(epoch)
    if best is not None:
        for net, state in zip(trained, best[2]):
            net.load_state_dict(state)
        curves[-1]["selected_epoch"] = best[1]
        curves[-1]["selected_val_sp"] = best[0]
    for net in trained:
        net.eval()
    return curves
