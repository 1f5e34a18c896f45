"""The ``fit_dre`` stage (cDR-RS, METHOD.md section 3): extractor, then conditional DR model.

1. A feature extractor is trained on the real training images (classification: ResNet-34
   trunk + Linear(512 -> C*H*W) + classifier head, CE; regression: sparse autoencoder with a
   regression head), selected on the validation split, then frozen.
2. psi(h | label code) is fitted with the penalised softplus loss on real features against
   features of fakes generated at the same labels: fresh every step as published, or drawn
   from a bank made once before the fit (dre.options.fit.fakes; see ``fit_ratio``).
   Regression, as the authors' cDR-RS fit (sources cited at FIT_DEFAULTS in
   cgankd/stage_options/dre.py): real batches balanced over the distinct labels
   (fit.real_batches), and the fake for a real y made in the window y' ~ U[y - zeta, y + zeta]
   with the autoencoder's label check, psi conditioned on y (fit.label_window, zeta_mult,
   window_retries; the sampler's window, subsample.options).
The output file (format: ``cgankd.dre.dre_file``) holds both nets and everything needed to
rebuild them and score samples.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cgankd.device import pick_device, seed_everything
from cgankd.dre.fit import balanced_batches, fake_sampler, fit_density_ratio, windowed
from cgankd.errors import CgankdInputError
from cgankd.dre.dre_file import FORMAT
from cgankd.dre.models import CLASS_DR_HIDDEN, REGRESSION_DR_HIDDEN, ClassLabelCode, DRMLP
from cgankd.fake.heads import features
from cgankd.fake.source import FakeSource
from cgankd.h5io import atomic_path, read_split
from cgankd.provenance import config_hash, volatile_provenance
# The options live torch-free (plan-time checks); DRE_DEFAULTS stays importable from here.
from cgankd.stage_options.dre import DRE_DEFAULTS, checked_dre_options  # noqa: F401
from cgankd.stages._extractor import setup_extractor, train_extractor
from cgankd.train.resume import Resume, key_parts, save_checkpoint
from cgankd.train.tensorset import TensorSet

# DR epochs between checkpoints of the fit (each holds the DR MLP and its Adam state; plus
# one every extractor_recipe.checkpoint_seconds)
DR_CHECKPOINT_EPOCHS = 10

def run(train: str | Path, val: str | Path, generator: str | Path, model: str | Path,
        curves: str | Path, *, options: Mapping[str, Any] | None,
        seed: int, device: str = "auto", accel: Mapping[str, Any] | None = None,
        source_hash: str = "", progress: bool = True) -> dict[str, Any]:
    opts = checked_dre_options(options)
    dev = pick_device(device)
    gen = seed_everything(seed)
    train_split = read_split(train)
    setup = setup_extractor(train_split, read_split(val), opts)
    task, scale, extractor = setup.task, setup.scale, setup.extractor
    train_set, val_set = setup.train_set, setup.val_set
    num_classes = setup.kwargs["num_classes"]
    stable = {"options": opts, "seed": seed, "data_hash": train_split.attrs.get("config_hash"),
              "source_hash": source_hash}
    model = Path(model)
    # Resumes need the same options and the same bytes in the input files. A checkpoint of
    # the DR fit carries the trained extractor, so a fit killed midway does not retrain it.
    splits = {"train": train, "val": val}
    dr_resume = Resume(model.with_suffix(".fit.resume.pt"),
                       key_parts(stable, {**splits, "generator": generator}),
                       desc="dre fit", every=DR_CHECKPOINT_EPOCHS,
                       seconds=opts["extractor_recipe"].get("checkpoint_seconds"), device=dev)
    dr_checkpoint = dr_resume.load(dev)
    if dr_checkpoint is None:
        trained = train_extractor(setup, opts, seed=seed, device=dev, accel=accel,
                                  checkpoint_path=model.with_suffix(".resume.pt"),
                                  log_path=model.with_name("extractor_history.jsonl"),
                                  fingerprint=key_parts(stable, splits), desc="dre extractor",
                                  progress=progress)
    else:
        trained = {k: dr_checkpoint[k]
                   for k in ("extractor_state", "extractor_val", "extractor_history")}
        extractor.load_state_dict(trained["extractor_state"])
    extractor.to(dev).eval().requires_grad_(False)
    extractor_kwargs = setup.kwargs

    source = FakeSource(generator, dev)
    psi, label_code, dr_kwargs, dr_curves = fit_ratio(
        extractor, source, train_set, val_set, opts, task=task, num_classes=num_classes,
        seed=seed, device=dev, generator=gen, resume=dr_resume, checkpoint=dr_checkpoint,
        carry=trained)
    meta = {"format": FORMAT, "task": task, "num_classes": num_classes,
            "extractor_kwargs": extractor_kwargs, "dr_kwargs": dr_kwargs,
            "extractor": {k: v.cpu() for k, v in extractor.state_dict().items()},
            "dr": {k: v.cpu() for k, v in psi.state_dict().items()},
            "label_code": ({k: v.cpu() for k, v in label_code.state_dict().items()}
                           if task == "classification" else None),
            "extractor_val": trained["extractor_val"], "config_hash": config_hash(stable),
            "options": opts, "seed": seed, "provenance": volatile_provenance()}
    if scale is not None:
        meta.update(scale.as_dict())
    save_checkpoint(model, meta)
    with atomic_path(curves) as tmp:
        tmp.write_text(json.dumps({"extractor_val": trained["extractor_val"],
                                   "extractor_history": trained["extractor_history"],
                                   "dr": dr_curves}, indent=1))
    dr_resume.finish()
    return {"extractor_val": trained["extractor_val"], "dr_final": dr_curves[-1]}


def fit_ratio(extractor: torch.nn.Module, source: FakeSource, train: TensorSet, val: TensorSet,
              opts: Mapping[str, Any], *, task: str, num_classes: int | None, seed: int,
              device: torch.device, generator: torch.Generator, resume: Resume | None = None,
              checkpoint: Mapping[str, Any] | None = None,
              carry: Mapping[str, Any] | None = None) -> tuple:
    """Step 2 on a frozen ``extractor``: (psi, label code, psi's kwargs, the fit's curves).

    ``opts``: checked dre options. Real batches and on-the-fly fakes draw from ``generator``
    (the stage's seeded stream, checkpointed); held-out fakes from seed + 1 and the fake bank
    (dre.options.fit.fakes: bank) from seed + 2, streams of their own, so a resumed fit
    re-makes both exactly.
    """
    dev = device

    @torch.no_grad()
    def embed(images: TensorSet) -> torch.Tensor:
        """Features of every real image, in 512-image batches."""
        return torch.cat([features(extractor, images.batch(rows.to(images.images.device))[0]
                                   .to(dev)) for rows in torch.arange(len(images)).split(512)])

    @torch.no_grad()
    def fake_features(y: torch.Tensor, stream: torch.Generator) -> torch.Tensor:
        return features(extractor, source.images(y, stream))

    fit_opts = opts["fit"]
    regression = task == "regression"
    make_fakes = fake_features
    if regression and fit_opts["label_window"]:
        zeta = float(fit_opts["zeta_mult"]) * float(source.meta.get("kappa_base", 0.0))
        if zeta <= 0:
            raise CgankdInputError("dre.options.fit.label_window: the generator records no "
                                   "kappa_base")

        @torch.no_grad()
        def scored_fakes(y: torch.Tensor, stream: torch.Generator) -> tuple:
            out = extractor(source.images(y, stream))
            return out[1], out[2]  # features h and the autoencoder's normalised label

        make_fakes = windowed(scored_fakes, zeta, int(fit_opts["window_retries"]))

    h_real = embed(train)  # the extractor is frozen and deterministic: embed real data once
    labels = train.labels.to(dev)
    batch = int(opts["batch_size"])
    code_dim = num_classes if task == "classification" else source.label_code_dim
    hidden = tuple(opts["dr_hidden"] or (CLASS_DR_HIDDEN if task == "classification"
                                         else REGRESSION_DR_HIDDEN))
    dr_kwargs = {"in_dim": int(h_real[0].numel()), "label_code_dim": code_dim,
                 "hidden": list(hidden), "dropout": float(opts["dr_dropout"])}
    psi = DRMLP(**{**dr_kwargs, "hidden": hidden}).to(dev)
    label_code = ClassLabelCode(num_classes).to(dev) if task == "classification" \
        else source.label_code

    def real_batches():
        if regression and fit_opts["real_batches"] == "balanced":
            return [(h_real[rows], labels[rows])
                    for rows in balanced_batches(labels, batch, generator)]
        perm = torch.randperm(len(labels), generator=generator).to(dev)
        return [(h_real[rows], labels[rows]) for rows in perm.split(batch)]

    def heldout_pairs():
        """Validation features and fakes at their labels, from their own seeded stream."""
        held_gen = torch.Generator().manual_seed(seed + 1)
        h_val, y_val = embed(val), val.labels.to(dev)
        y_fake = y_val.repeat(int(opts["val_fakes_per_image"]))
        if make_fakes is fake_features:
            h_fake = torch.cat([fake_features(y, held_gen) for y in y_fake.split(512)])
            return h_val, y_val, h_fake, y_fake
        # the label window: held-out fakes as the fit's, those failing the check left out
        made = [make_fakes(y, held_gen) for y in y_fake.split(512)]
        keep = torch.cat([k for _, k in made])
        if not keep.any():
            raise CgankdInputError("dre.options.fit.label_window: no held-out fake passed the "
                                   "autoencoder's label check; raise window_retries")
        return h_val, y_val, torch.cat([h for h, _ in made])[keep], y_fake[keep.to(dev)]

    fake_batch = fake_sampler(make_fakes, labels, opts["fit"], generator=generator,
                              bank_generator=torch.Generator().manual_seed(seed + 2),
                              where="dre.options.fit")
    curves = fit_density_ratio(psi, real_batches, fake_batch, label_code=label_code,
                               train_label_code=task == "classification",
                               options=opts["fit"],
                               heldout=heldout_pairs() if opts["fit"]["val_every"] else None,
                               where="dre.fit", resume=resume, checkpoint=checkpoint,
                               generators=(generator,), carry=carry)
    return psi, label_code, dr_kwargs, curves
