"""Sampling and filtering stages: against their forward-pass bounds and the published loop.

Measured in one run, on one device; each side runs in a fresh process, so each peak memory
is its own:
- stage: ``subsample`` (cDR-RS, burn-in reused) then ``filter_relabel`` (per class), sized by
  config/config.yaml's rule (pool per class / fakes kept per class, filter burn-in / pool),
  with its burn-in, batch sizes and rho;
- bounds: the bare forwards each stage cannot avoid, batch by batch, with no sampling logic
  or I/O: generator + extractor + DR MLP on every proposal the subsample stage made (burn-in
  included), and the teacher on every pooled image;
- naive: the published code's structure (cGAN-KD make_fake_datasets), written anew here: per
  class, a sampler call that runs its own burn-in each time, moves every batch to the host and
  back for scoring, and accepts into Python lists; the filter's cutoff from one such call of
  ``filter burn-in`` samples, then calls for half the quota at a time until it is met, each
  batch teacher-scored through a per-sample Dataset and a DataLoader.
Both sides make the same number of filtered fakes with the same nets, burn-in, batch sizes
and rho. Reported as ratios (bound / stage: 1.0 means no overhead, target >= 0.7 for
sampling; naive / stage: target >= 3) and written as JSON. The nets are barely trained:
throughput does not depend on their quality, only acceptance does, and it is reported.

    python benchmarks/bench_sampling.py [--device auto] [--per-class 100] [--out FILE]
"""

import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml
from common import parser, peak_rss_mb, report, sync
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from cgankd.device import pick_device
from cgankd.dre.dre_file import load_dre
from cgankd.fake.source import FakeSource
from cgankd.h5io import Split, read_split, write_split
from cgankd.stages._training import train_model
from cgankd.stages.filter_relabel import FILTER_DEFAULTS
from cgankd.stages.filter_relabel import run as filter_relabel
from cgankd.stages.fit_dre import run as fit_dre
from cgankd.stages.subsample import SUBSAMPLE_DEFAULTS
from cgankd.stages.subsample import run as subsample
from cgankd.stages.train_cgan import train_cgan
from cgankd.train.model_file import load_model

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
NUM_CLASSES = 10  # the benchmark's models, like config.yaml's dataset (digits), have 10 classes
CHANNELS = 1  # grey images, as digits


def make_models(folder: Path, resolution: int, device: str) -> dict[str, Path]:
    """A generator, a DR model and a teacher of the digits-default sizes (weights barely
    trained: throughput does not depend on sample quality, only acceptance does, and it is
    reported)."""
    rng = np.random.default_rng(0)
    n = 200
    labels = np.arange(n) % NUM_CLASSES
    images = rng.integers(0, 255, (n, CHANNELS, resolution, resolution), dtype=np.uint8)
    attrs = {"task": "classification", "num_classes": NUM_CLASSES,
             "class_names": list("0123456789")}
    for name in ("train", "val"):
        write_split(folder / f"{name}.h5", Split(images, labels, np.arange(n), attrs))
    train_cgan(read_split(folder / "train.h5"), {"iterations": 2, "sample_every": 0,
                                                 "checkpoint_every": 2},
               folder / "cgan", device=device, seed=0, progress=False)
    fit_dre(folder / "train.h5", folder / "val.h5", folder / "cgan" / "generator.pt",
            folder / "dre.pt", folder / "curves.json", seed=0, device=device, progress=False,
            options={"extractor_width": 16, "dr_hidden": [256, 128, 64, 32, 16],
                     "extractor_recipe": {"steps": 20, "crop_pad": 0, "flip": False},
                     "fit": {"epochs": 5}})
    teacher_cfg = yaml.safe_load(CONFIG.read_text())["teacher"]  # the pipeline's teacher net
    train_model(role="teacher", train_h5=folder / "train.h5", val_h5=folder / "val.h5",
                out_model=folder / "teacher.pt", out_log=folder / "teacher.jsonl",
                net_cfg={"net": teacher_cfg["net"], "kwargs": teacher_cfg["kwargs"]},
                recipe={"steps": 5, "eval_every": 5, "crop_pad": 0, "flip": False},
                seed=0, device=device, progress=False)
    return {"generator": folder / "cgan" / "generator.pt", "dre": folder / "dre.pt",
            "teacher": folder / "teacher.pt"}


def pipeline_sizes(kept_per_class: int, burnin: int | None, batch: int | None
                   ) -> dict[str, Any]:
    """The pipeline's sizes for ``kept_per_class`` filtered fakes per class: config.yaml's
    pool / kept ratio and filter burn-in / pool ratio, its burn-in, batch sizes and rho
    (``burnin`` and ``batch`` override the subsample stage's when given)."""
    cfg = yaml.safe_load(CONFIG.read_text())
    sub = {**SUBSAMPLE_DEFAULTS, **cfg["subsample"]["options"]}
    filt = {**FILTER_DEFAULTS, **cfg["filter"]["options"]}
    config_kept = cfg["fake"]["count"] / NUM_CLASSES
    pool = math.ceil(kept_per_class * sub["per_class"] / config_kept)
    return {"kept_per_class": kept_per_class, "pool_per_class": pool,
            "n_burnin": int(burnin or sub["n_burnin"]), "batch": int(batch or sub["batch_size"]),
            "filter_burnin": math.ceil(pool * filt["burnin"] / sub["per_class"]),
            "filter_batch": int(filt["batch_size"]), "rho": float(filt["rho"])}


def run_stages(models: dict[str, Path], sizes: dict[str, Any], device: torch.device,
               folder: Path) -> dict[str, Any]:
    """Our side: the subsample stage, then the filter stage, timed separately."""
    options = {"method": "cdrrs", "per_class": sizes["pool_per_class"],
               "n_burnin": sizes["n_burnin"], "batch_size": sizes["batch"]}
    sync(device)
    start = time.perf_counter()
    stats = subsample(models["generator"], models["dre"], folder / "pool.h5",
                      folder / "pool.json", options=options, seed=0, device=str(device),
                      progress=False)
    sync(device)
    middle = time.perf_counter()
    filter_relabel(folder / "pool.h5", models["teacher"], folder / "fakes.h5",
                   options={"mode": "per_class", "rho": sizes["rho"],
                            "burnin": sizes["filter_burnin"],
                            "batch_size": sizes["filter_batch"]},
                   count=sizes["kept_per_class"] * NUM_CLASSES, seed=0, device=str(device))
    sync(device)
    end = time.perf_counter()
    per_target = stats["per_target"]
    return {"subsample_seconds": middle - start, "filter_seconds": end - middle,
            "pool": stats["rows"], "acceptance_rate_mean": stats["acceptance_rate_mean"],
            "proposals": sum(s["proposed"] + s["burnin"] for s in per_target),
            "burnin_accepted": sum(s["burnin_accepted"] for s in per_target),
            "teacher_scored": stats["rows"]}


@torch.no_grad()
def time_sampling_bound(models: dict[str, Path], sizes: dict[str, Any], device: torch.device,
                        proposals: int) -> dict[str, Any]:
    """Seconds for the unavoidable forwards of ``proposals`` samples, batch by batch."""
    source = FakeSource(models["generator"], device)
    extractor, psi, code, _ = load_dre(models["dre"], device)
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(sizes["batch"], dtype=torch.long, device=device)
    psi(extractor(source.images(labels, gen))[1], code(labels))  # warm-up: a stricter bound
    sync(device)
    start = time.perf_counter()
    for _ in range(-(-proposals // sizes["batch"])):
        psi(extractor(source.images(labels, gen))[1], code(labels))
    sync(device)
    return {"sampling_bound_seconds": time.perf_counter() - start}


@torch.no_grad()
def time_filter_bound(models: dict[str, Path], sizes: dict[str, Any], device: torch.device,
                      pool: int, resolution: int) -> dict[str, Any]:
    """Seconds for the teacher's forwards over ``pool`` images already on the device."""
    teacher, _ = load_model(models["teacher"], device)
    teacher.eval()
    images = torch.rand(pool, CHANNELS, resolution, resolution, device=device) * 2 - 1
    batch = sizes["filter_batch"]
    teacher(images[:batch])  # warm-up
    sync(device)
    start = time.perf_counter()
    for i in range(0, pool, batch):
        teacher(images[i:i + batch])
    sync(device)
    return {"filter_bound_seconds": time.perf_counter() - start}


class PerSampleImages(Dataset):
    """The published filter's dataset: one uint8 image at a time through a per-sample
    transform, collated into batches by a DataLoader. The transform here is un-augmented (to
    float, then normalised to the teacher's [-1, 1]): the published one augmented, a bug; the
    per-sample structure is what is mirrored."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        x = torch.from_numpy(self.images[i]).float().div(255.0)
        return x.sub(0.5).div(0.5), self.labels[i]


@torch.no_grad()
def run_naive(models: dict[str, Path], sizes: dict[str, Any], device: torch.device,
              folder: Path) -> dict[str, Any]:
    """The published structure, per class; see the module docstring."""
    sync(device)
    start = time.perf_counter()
    source = FakeSource(models["generator"], device)
    extractor, psi, code, _ = load_dre(models["dre"], device)
    teacher, _ = load_model(models["teacher"], device)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    batch, rho = sizes["batch"], sizes["rho"]
    counts = {"proposals": 0, "teacher_scored": 0, "burnin_runs": 0}

    def generate(n: int, label: int) -> torch.Tensor:
        """Whole batches until n, each moved to the host; the first n returned."""
        labels = torch.full((batch,), label, dtype=torch.long, device=device)
        parts, got = [], 0
        while got < n:
            parts.append(source.images(labels, gen).cpu())
            got += batch
            counts["proposals"] += batch
        return torch.cat(parts)[:n]

    def density_ratios(images: torch.Tensor, label: int) -> np.ndarray:
        """Padded with its first batch, moved back batch by batch, ratios back to the host."""
        n, b = len(images), min(batch, len(images))
        images = torch.cat([images, images[:b]])
        parts, got = [], 0
        while got < n:
            x = images[got:got + b].to(device)
            labels = torch.full((b,), label, dtype=torch.long, device=device)
            parts.append(psi(extractor(x)[1], code(labels)).cpu())
            got += b
        return torch.cat(parts)[:n].numpy().reshape(-1)

    def enhanced_sampler(n: int, label: int) -> np.ndarray:
        """Its own burn-in on every call, then batches accepted into a list until n."""
        counts["burnin_runs"] += 1
        bound = density_ratios(generate(sizes["n_burnin"], label), label).max()
        kept, got = [], 0
        while got < n:
            images = generate(batch, label)
            ratios = density_ratios(images, label)
            bound = max(bound, ratios.max())
            accept = np.flatnonzero(rng.uniform(size=batch) <= ratios / bound)
            if len(accept):
                kept.append(images[accept])
            got += len(accept)
        return np.concatenate(kept)[:n]

    def teacher_losses(images: np.ndarray, label: int) -> np.ndarray:
        """Cross-entropy per image through the per-sample Dataset; the teacher goes to the
        device for the call and back to the host after it, as published."""
        teacher.to(device).eval()
        loader = DataLoader(PerSampleImages(images, np.full(len(images), float(label))),
                            batch_size=sizes["filter_batch"], shuffle=False)
        losses, predicted = [], []
        for x, y in loader:
            outputs = teacher(x.to(device))
            losses.append(F.cross_entropy(outputs, y.long().to(device),
                                          reduction="none").cpu().numpy())
            predicted.append(outputs.argmax(1).cpu().numpy())
        teacher.cpu()
        counts["teacher_scored"] += len(images)
        return np.concatenate(losses)

    def host_uint8(images: np.ndarray) -> np.ndarray:
        return ((images * 0.5 + 0.5) * 255.0).astype(np.uint8)

    fakes = []
    for label in range(NUM_CLASSES):
        burnin = host_uint8(enhanced_sampler(sizes["filter_burnin"], label))
        cutoff = np.quantile(teacher_losses(burnin, label), rho)
        del burnin  # the cutoff's samples are discarded
        parts, got = [], 0
        while got < sizes["kept_per_class"]:
            images = host_uint8(enhanced_sampler(sizes["kept_per_class"] // 2, label))
            images = images[teacher_losses(images, label) < cutoff]
            parts.append(images)
            got += len(images)
        fakes.append(np.concatenate(parts)[:sizes["kept_per_class"]])
    fakes = np.concatenate(fakes)
    with h5py.File(folder / "naive.h5", "w") as f:  # written once at the end, as published
        f.create_dataset("fake_images", data=fakes, compression="gzip", compression_opts=6)
        f.create_dataset("fake_labels", data=np.repeat(np.arange(NUM_CLASSES),
                                                       sizes["kept_per_class"]))
    sync(device)
    return {"naive_seconds": time.perf_counter() - start, "naive_fakes": len(fakes),
            **{f"naive_{k}": v for k, v in counts.items()}}


SIDES = {"stages": run_stages, "sampling_bound": time_sampling_bound,
         "filter_bound": time_filter_bound, "naive": run_naive}


def measure(side: str, threads: int, device: str, *args: Any) -> dict[str, Any]:
    """Run one side in this (fresh) process; add its peak memory."""
    torch.set_num_threads(threads)
    dev = pick_device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    result = SIDES[side](*args[:2], dev, *args[2:])
    peak = {"rss_mb": peak_rss_mb()}
    if dev.type == "cuda":
        peak["cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    return {**result, **{f"peak_{k}_{side}": v for k, v in peak.items()}}


def in_fresh_process(side: str, threads: int, device: str, *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, side, threads, device, *args).result()


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--per-class", type=int, default=100, help="filtered fakes per class")
    cli.add_argument("--batch", type=int, default=None, help="default: config.yaml's")
    cli.add_argument("--burnin", type=int, default=None, help="default: config.yaml's")
    args = cli.parse_args()
    torch.set_num_threads(args.threads)
    device = str(pick_device(args.device))
    sizes = pipeline_sizes(args.per_class, args.burnin, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = make_models(folder, args.resolution, device)
        ours = in_fresh_process("stages", args.threads, device, models, sizes, folder)
        bound = in_fresh_process("sampling_bound", args.threads, device, models, sizes,
                                 ours["proposals"])
        bound |= in_fresh_process("filter_bound", args.threads, device, models, sizes,
                                  ours["pool"], args.resolution)
        naive = in_fresh_process("naive", args.threads, device, models, sizes, folder)
    count = args.per_class * NUM_CLASSES
    stage_s = ours["subsample_seconds"] + ours["filter_seconds"]
    result = {
        "device": device, "torch": torch.__version__, "threads": args.threads,
        "resolution": args.resolution, "classes": NUM_CLASSES, **sizes,
        "fakes": count, **ours, **bound, **naive, "stage_seconds": stage_s,
        "sampling_bound_over_stage": bound["sampling_bound_seconds"]
        / ours["subsample_seconds"],  # target >= 0.7
        "filter_bound_over_stage": bound["filter_bound_seconds"] / ours["filter_seconds"],
        "filter_images_per_second": ours["pool"] / ours["filter_seconds"],
        "filter_bound_images_per_second": ours["pool"] / bound["filter_bound_seconds"],
        "accepted_per_second": count / stage_s,
        "naive_accepted_per_second": count / naive["naive_seconds"],
        "speedup_over_naive": naive["naive_seconds"] / stage_s,  # target >= 3
        "naive_over_stage_proposals": naive["naive_proposals"] / ours["proposals"],
    }
    report(result, ("stage_seconds", "subsample_seconds", "filter_seconds", "naive_seconds",
                    "speedup_over_naive", "sampling_bound_over_stage",
                    "filter_bound_over_stage", "filter_images_per_second",
                    "filter_bound_images_per_second", "accepted_per_second",
                    "naive_accepted_per_second", "proposals", "naive_proposals",
                    "teacher_scored", "naive_teacher_scored", "acceptance_rate_mean",
                    "burnin_accepted", *sorted(k for k in result if k.startswith("peak_"))),
           args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
