"""Subsampling stage throughput: against its forward-pass bound and a naive per-sample loop.

Measured in one run, on one device:
- stage: ``cgankd.fake.subsample_stage.subsample`` (cDR-RS), wall time and accepted samples/s;
- bound: the bare forwards the stage cannot avoid (generator + extractor + DR MLP on every
  proposal it made, burn-in included, at the same batch size), with no sampling logic or I/O;
- naive: the structure of the published code: per class, generate, score, then accept sample by
  sample in a Python loop, keeping every accepted image in lists until the end.
Reported as ratios (bound / stage: 1.0 means no overhead; target >= 0.7) and written as JSON.

    python benchmarks/bench_sampling.py [--device auto] [--per-class 500] [--out FILE]
"""

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import parser, report, setup, sync

from cgankd.fake.dre_stage import fit_dre, load_dre
from cgankd.fake.source import FakeSource
from cgankd.fake.subsample_stage import subsample
from cgankd.gan.train import train_cgan
from cgankd.h5io import Split, read_split, write_split


def make_models(folder: Path, resolution: int, device: str) -> tuple[Path, Path]:
    """A generator and a DR model of the digits-default sizes (weights barely trained:
    throughput does not depend on sample quality, only acceptance does, and it is reported)."""
    rng = np.random.default_rng(0)
    n = 200
    labels = np.arange(n) % 10
    images = rng.integers(0, 255, (n, 1, resolution, resolution), dtype=np.uint8)
    attrs = {"task": "classification", "num_classes": 10, "class_names": list("0123456789")}
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
    return folder / "cgan" / "generator.pt", folder / "dre.pt"


def time_bound(generator: Path, dre: Path, proposals: int, batch: int,
               device: torch.device) -> float:
    """Seconds for the unavoidable forwards of ``proposals`` samples, batch by batch."""
    source = FakeSource(generator, device)
    extractor, psi, code, _ = load_dre(dre, device)
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(-(-proposals // batch)):
            x = source.images(labels, gen)
            psi(extractor(x)[1], code(labels))
    sync(device)
    return time.perf_counter() - start


def time_naive(generator: Path, dre: Path, per_class: int, batch: int, n_burnin: int,
               device: torch.device) -> tuple[float, int]:
    """The published structure: per-sample Python acceptance, everything kept in lists."""
    source = FakeSource(generator, device)
    extractor, psi, code, _ = load_dre(dre, device)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    proposed = 0
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        kept_all = []
        for k in range(source.num_classes):
            labels = torch.full((batch,), k, dtype=torch.long, device=device)
            m = 0.0
            for _ in range(-(-n_burnin // batch)):
                x = source.images(labels, gen)
                m = max(m, psi(extractor(x)[1], code(labels)).max().item())
            kept: list[np.ndarray] = []
            while len(kept) < per_class:
                x = source.images(labels, gen)
                ratios = psi(extractor(x)[1], code(labels)).cpu().numpy()
                images = x.cpu().numpy()
                proposed += batch
                for i in range(batch):  # one sample at a time, as the published loop does
                    m = max(m, float(ratios[i]))
                    if rng.uniform() <= ratios[i] / m and len(kept) < per_class:
                        kept.append(((images[i] + 1) * 127.5).round().astype(np.uint8))
            kept_all.append(np.stack(kept))
        np.concatenate(kept_all)
    sync(device)
    return time.perf_counter() - start, proposed


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--per-class", type=int, default=500)
    cli.add_argument("--batch", type=int, default=500)
    cli.add_argument("--burnin", type=int, default=1000)
    args = cli.parse_args()
    device = setup(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generator, dre = make_models(folder, args.resolution, str(device))
        options = {"per_class": args.per_class, "n_burnin": args.burnin,
                   "batch_size": args.batch, "method": "cdrrs"}
        sync(device)
        start = time.perf_counter()
        stats = subsample(generator, dre, folder / "pool.h5", folder / "stats.json",
                          options=options, seed=0, device=str(device), progress=False)
        sync(device)
        stage_s = time.perf_counter() - start
        proposals = sum(s["proposed"] + s["burnin"] for s in stats["per_target"])
        bound_s = time_bound(generator, dre, proposals, args.batch, device)
        naive_s, naive_proposed = time_naive(generator, dre, args.per_class, args.batch,
                                             args.burnin, device)
    accepted = stats["rows"]
    result = {
        "device": str(device), "torch": torch.__version__, "threads": args.threads,
        "resolution": args.resolution, "per_class": args.per_class, "batch": args.batch,
        "accepted": accepted, "proposals": proposals,
        "acceptance_rate_mean": stats["acceptance_rate_mean"],
        "stage_seconds": stage_s, "bound_seconds": bound_s, "naive_seconds": naive_s,
        "naive_proposals": naive_proposed,
        "accepted_per_second": accepted / stage_s,
        "bound_over_stage": bound_s / stage_s,  # target >= 0.7
        "stage_speedup_over_naive": naive_s / stage_s,  # target >= 3
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    report(result, ("accepted_per_second", "bound_over_stage", "stage_speedup_over_naive",
                    "acceptance_rate_mean", "peak_rss_mb"), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
