"""The training rules' shared entry (train_teacher, train_student, train_metric_net, train_cas,
train_convergence): split files in, a model file out. Each rule's module fixes its ``role``."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cgankd import distributed
from cgankd.accel import checked_accel_options
from cgankd.conventions import LabelScale
from cgankd.device import pick_device, seed_everything
from cgankd.errors import CgankdInputError
from cgankd.h5io import read_split
from cgankd.kd.objective import NO_KD, DistillObjective
from cgankd.nets import build_net
from cgankd.nets.contract import check_contract
from cgankd.provenance import config_hash, volatile_provenance
from cgankd.stage_options.nets import net_spec
from cgankd.train.model_file import load_model, save_model
from cgankd.train.recipe import checked_recipe
from cgankd.train.resume import key_parts
from cgankd.train.tensorset import concat, tensorset_from_split
from cgankd.train.trainer import fit

CRD = "crd"  # the KD method with a per-sample memory bank (cgankd/kd/crd.py)


def _protocol(recipe: Mapping[str, Any], steps: int, n_train: int) -> dict[str, Any]:
    """What the results table needs to name the training protocol of a model file.

    ``epochs`` is the configured count (None under budget "steps"); ``passes`` is how many
    times the run went through its own training set, under either budget, so a table can show
    that equal steps give a variant with fakes fewer passes over the real images.
    """
    batch = min(int(recipe["batch_size"]), n_train)  # BatchRows' batch on a small set
    return {"budget": recipe["budget"], "steps": steps, "epochs": recipe["epochs"],
            "passes": round(steps * batch / n_train, 3), "selection": recipe["selection"]}


def train_model(*, role: str, train: str | Path, val: str | Path, model: str | Path,
                history: str | Path, net: Mapping[str, Any], recipe: Mapping[str, Any],
                seed: int, device: str = "auto", kd_method: str = NO_KD,
                kd: Mapping[str, Any] | None = None, teacher: str | Path | None = None,
                fakes: Sequence[str | Path] = (), init: str | Path | None = None,
                source_hash: str = "",
                identity: Mapping[str, Any] | None = None, progress: bool = True,
                accel: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train one net on the split ``train`` (+ the fake sets ``fakes``), select on ``val``,
    save it as ``model`` with its log ``history``. Arguments are named like the rules' keys.

    ``identity`` (student name, variant, ...) is copied into the model file so evaluation and
    the results table know what each file is without parsing paths. ``init`` starts from
    another model file's weights (v3 fine-tunes the no-KD student); it must be the same net.
    ``accel`` holds ``cgankd.accel`` options. Under torchrun only rank 0 writes the model file.
    """
    # the config section each role's net and recipe come from (CAS trains a student net)
    where = {"teacher": "teacher", "student": "students", "metric": "quality",
             "cas": "students"}[role]
    recipe = checked_recipe(recipe, f"{where}.recipe")
    net_name, net_kwargs = net_spec(net, f"{where}.net")
    accel = checked_accel_options(accel)
    world = distributed.current()
    if world.parallel and kd_method == CRD:
        raise CgankdInputError(f"KD method {CRD!r} trains on one GPU only: its memory bank is "
                               f"updated per process, and DDP would keep rank 0's; set this "
                               f"rule's gpu resource to 1")
    dev = pick_device(device)
    seed_everything(seed)

    train_split, val_split = read_split(train), read_split(val)
    task = train_split.task
    scale = LabelScale.from_attrs(train_split.attrs) if task == "regression" else None
    sets = [tensorset_from_split(train_split, scale)]
    sets += [tensorset_from_split(read_split(p), scale) for p in fakes]
    train_set = concat(sets) if len(sets) > 1 else sets[0]
    val_set = tensorset_from_split(val_split, scale)

    num_outputs = int(train_split.attrs["num_classes"]) if task == "classification" else 1
    in_channels = int(train_split.images.shape[1])
    student = build_net(net_name, num_outputs, in_channels, **net_kwargs)
    sample = train_set.batch(torch.arange(min(2, len(train_set))))[0]
    check_contract(student, sample, num_outputs, f"{where}.net {net_name}")
    if init is not None:
        init_net, init_meta = load_model(init)
        if (init_meta["net"], init_meta.get("net_kwargs", {})) != (net_name, net_kwargs):
            raise CgankdInputError(f"{init}: holds {init_meta['net']} "
                                   f"{init_meta.get('net_kwargs')}, cannot initialise "
                                   f"{net_name} {net_kwargs}")
        student.load_state_dict(init_net.state_dict())
    teacher_net = None
    if kd_method != NO_KD:
        if teacher is None:
            raise CgankdInputError(f"KD method {kd_method!r} needs a teacher model file")
        teacher_net, _ = load_model(teacher, dev)
    kd = dict(kd or {})
    objective = DistillObjective(
        kd_method, task=task, student=student, teacher=teacher_net,
        sample_input=sample, n_data=len(train_set),
        weights=(kd.get("weights") or {}).get(kd_method),
        options=kd.get("options"), data_labels=train_set.labels,
        **({"convention": kd["convention"]} if "convention" in kd else {}))

    # keys as model files always held them (extra_train, init_model): stored and hashed
    stable = {"role": role, "net": net_name, "net_kwargs": net_kwargs, "recipe": recipe,
              "seed": seed, "kd_method": kd_method, "kd": kd,
              "data_hash": train_split.attrs.get("config_hash"),
              "extra_train": [str(p) for p in fakes],
              "init_model": str(init) if init else None, "source_hash": source_hash,
              # the user's own net (import path): its module's content is part of what ran
              **({"net_source_sha256": net["source_sha256"]}
                 if net.get("source_sha256") else {})}
    model = Path(model)
    # A resume needs the same options and the same bytes in every input file: a fake set or
    # teacher rewritten under the same path (other filter options, say) restarts the run.
    resume_key = key_parts(stable, {"train": train, "val": val, "fakes": fakes,
                                    "teacher": None if teacher_net is None else teacher,
                                    "init": init})
    result = fit(objective, student, train_set, val_set, recipe, task=task, label_scale=scale,
                 device=dev, seed=seed, checkpoint_path=model.with_suffix(".resume.pt"),
                 log_path=history, fingerprint=resume_key, desc=f"{role} {net_name}",
                 progress=progress, accel=accel,
                 real_rows=len(sets[0]) if fakes else None)
    meta = {**stable, "config_hash": config_hash(stable), "identity": dict(identity or {}),
            "task": task, "num_outputs": num_outputs, "in_channels": in_channels,
            "resolution": int(train_split.images.shape[-1]),
            "num_classes": num_outputs if task == "classification" else None,
            "train_size": len(train_set), **_protocol(recipe, result.steps, len(train_set)),
            "best_step": result.best_step, "val": result.best_val, "accel": result.accel,
            "provenance": volatile_provenance()}
    if scale is not None:
        meta.update(scale.as_dict())
    if world.main:
        save_model(model, result.best_state, meta)
    return {"steps": result.steps, "best_step": result.best_step, "val": result.best_val}
