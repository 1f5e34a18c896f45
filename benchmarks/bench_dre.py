"""The DR fit's fake sources: on-the-fly fakes (published) against a fake bank, in one run.

On a pipeline's own files (``--results``: data/, cgan/generator.pt, dre/dre.pt), with the
trained extractor of dre/dre.pt frozen and the DR options stored there, the stage's DR half
(``cgankd.stages.fit_dre.fit_ratio``) runs twice from the same seed: ``fit.fakes: on_the_fly``,
then ``fit.fakes: bank``. Reported: the fit times and their ratio (on-the-fly / bank; wall
and this process's CPU time, the steadier of the two on a shared machine), and
held-out SP of each selected model (the same held-out pairs for both; psi = 1 scores
-softplus(1) = -1.31326). ``--quality`` then subsamples with each DR model (and without one,
the unprocessed pool) for each of ``--sub-seeds``, with the config's subsample options, and
measures each pool in the metric net's space (quality/metric_net.pt; test split, validation
as reference): acceptance rate, FID and Intra-FID.

    python benchmarks/bench_dre.py --results results/digits [--epochs N] [--quality]
        [--sub-seeds 0 1 2] [--out FILE]
"""

import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from common import parser, peak_rss_mb, report, setup, timed

from cgankd.device import seed_everything
from cgankd.dre.dre_file import load_dre
from cgankd.fake.source import FakeSource
from cgankd.h5io import read_split
from cgankd.metrics.quality import sample_quality
from cgankd.stage_options.dre import checked_dre_options
from cgankd.stages import subsample
from cgankd.stages.fit_dre import fit_ratio
from cgankd.train.resume import load_checkpoint, save_checkpoint
from cgankd.train.tensorset import tensorset_from_split

WAYS = ("on_the_fly", "bank")
CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def fit_both(results: Path, device, fit_overrides: dict, seed: int) -> dict:
    """Both fits on the same frozen extractor; {way: (seconds, psi, label code, curves)}."""
    extractor, _, _, meta = load_dre(results / "dre" / "dre.pt", device)
    train_split = read_split(results / "data" / "train.h5")
    if train_split.task != "classification":
        sys.exit("bench_dre: classification results only (the digits default)")
    train = tensorset_from_split(train_split, None)
    val = tensorset_from_split(read_split(results / "data" / "val.h5"), None)
    source = FakeSource(results / "cgan" / "generator.pt", device)
    stored = copy.deepcopy(meta["options"])
    out = {}
    for way in WAYS:
        opts = checked_dre_options({**stored, "fit": {**stored["fit"], **fit_overrides,
                                                      "fakes": way}})
        done = {}

        def run():
            gen = seed_everything(seed)  # the same psi init and real batches for both ways
            done["fit"] = fit_ratio(extractor, source, train, val, opts, task="classification",
                                    num_classes=int(meta["num_classes"]), seed=seed,
                                    device=device, generator=gen)
        cpu = time.process_time()
        seconds = timed(run, device)
        cpu = time.process_time() - cpu  # this process's CPU time: robust to a shared machine
        psi, code, _, curves = done["fit"]
        out[way] = (seconds, psi, code, curves, cpu)
        print(f"{way}: {seconds:.1f} s ({cpu:.1f} s CPU), selected epoch "
              f"{curves[-1].get('selected_epoch')}, held-out SP "
              f"{curves[-1].get('selected_val_sp')}", flush=True)
    return out


def quality(results: Path, fits: dict, sub_seeds: list[int], folder: Path) -> dict:
    """Acceptance, FID and Intra-FID of the unprocessed and each way's subsampled pools."""
    base = load_checkpoint(results / "dre" / "dre.pt")
    sub_options = yaml.safe_load(CONFIG.read_text())["subsample"]["options"]
    dre_files = {"none": None}
    for way, (_, psi, code, _, _) in fits.items():
        dre_files[way] = folder / f"dre_{way}.pt"
        save_checkpoint(dre_files[way], {
            **base, "dr": {k: v.cpu() for k, v in psi.state_dict().items()},
            "label_code": {k: v.cpu() for k, v in code.state_dict().items()}})
    rows = {}
    for name, dre_path in dre_files.items():
        for sub_seed in sub_seeds:
            pool = folder / f"{name}_{sub_seed}.h5"
            stats = subsample.run(results / "cgan" / "generator.pt", dre_path, pool,
                                  pool.with_suffix(".json"),
                                  options={**sub_options,
                                           "method": "none" if dre_path is None else "cdrrs"},
                                  seed=sub_seed, progress=False)
            q = sample_quality(results / "quality" / "metric_net.pt",
                               results / "data" / "test.h5", pool,
                               reference_h5=results / "data" / "val.h5")
            rows.setdefault(name, []).append({"seed": sub_seed, "fid": q["fid"],
                                              "intra_fid": q["intra_fid"],
                                              "acceptance": stats["acceptance_rate_mean"]})
            print(f"{name} seed {sub_seed}: {rows[name][-1]}", flush=True)
    summary = {}
    for name, runs in rows.items():
        for key in ("fid", "intra_fid", "acceptance"):
            values = np.array([r[key] for r in runs])
            summary[f"{name}_{key}_mean"] = float(values.mean())
            summary[f"{name}_{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    for way in WAYS:  # paired over subsampling seeds: subsampled minus unprocessed
        for key in ("fid", "intra_fid"):
            diff = np.array([a[key] - b[key] for a, b in zip(rows[way], rows["none"])])
            summary[f"{way}_{key}_change_mean"] = float(diff.mean())
            summary[f"{way}_{key}_change_std"] = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    return {"runs": rows, **summary}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True,
                   help="a pipeline's results folder (classification), e.g. results/digits")
    p.add_argument("--epochs", type=int, default=None, help="override the stored fit epochs")
    p.add_argument("--bank-per-real", type=int, default=None,
                   help="override fit.bank_per_real (default: the code's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality", action="store_true", help="also subsample and measure")
    p.add_argument("--sub-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    device = setup(args)
    overrides = {}
    if args.epochs is not None:
        # keep the stored schedule's shape: milestones scaled with the epochs
        stored = load_checkpoint(args.results / "dre" / "dre.pt")["options"]["fit"]
        overrides = {"epochs": args.epochs,
                     "milestones": [max(1, round(m * args.epochs / stored["epochs"]))
                                    for m in stored["milestones"]]}
    if args.bank_per_real is not None:
        overrides["bank_per_real"] = args.bank_per_real
    fits = fit_both(args.results, device, overrides, args.seed)
    result = {"device": str(device), "threads": args.threads, "seed": args.seed,
              "fit_overrides": overrides,
              **{f"{way}_seconds": fits[way][0] for way in WAYS},
              **{f"{way}_selected_epoch": fits[way][3][-1].get("selected_epoch") for way in WAYS},
              **{f"{way}_selected_val_sp": fits[way][3][-1].get("selected_val_sp")
                 for way in WAYS},
              **{f"{way}_cpu_seconds": fits[way][4] for way in WAYS},
              "fit_speedup": fits["on_the_fly"][0] / fits["bank"][0],
              "fit_speedup_cpu": fits["on_the_fly"][4] / fits["bank"][4]}
    keys = ["fit_speedup", "fit_speedup_cpu", "on_the_fly_selected_val_sp", "bank_selected_val_sp"]
    if args.quality:
        with tempfile.TemporaryDirectory() as tmp:
            result["quality"] = quality(args.results, fits, args.sub_seeds, Path(tmp))
        for key in [k for k in result["quality"] if k.endswith("_mean")]:
            result[key] = result["quality"][key]
            keys.append(key)
    result["peak_rss_mb"] = peak_rss_mb()
    report(result, keys, args.out)


if __name__ == "__main__":
    main()
