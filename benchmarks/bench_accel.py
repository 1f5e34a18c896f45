"""What the ``accel`` options buy per training loop: the pipeline's own loops, timed under
several settings in one run, reported as speed-ups over plain fp32.

Loops, each at the embedded digits default's shape (16 px, batch 64, one torch thread):
- gan: ``train_cgan`` (BigGAN, 8 px native, mode seeking 0.2, DiffAugment, EMA);
- teacher: ``fit`` of the 32-wide cnn;
- student: ``fit`` of the 2-wide cnn.
Settings: fp32, channels-last, bf16 autocast + channels-last. Each loop runs every setting
``--rounds`` times, interleaved, and keeps each setting's fastest round, so a machine shared
with other work biases no setting more than another.

On CPU, bf16 pays only where the matrix units take it (AVX-512 BF16, AMX); tiny nets are
bound by per-op overhead and gain nothing from either option.

    python benchmarks/bench_accel.py [--device auto] [--rounds 3] [--out FILE]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_training import digits_like, digits_tensorset, fit_cnn
from common import parser, report, setup, timed

from cgankd.h5io import Split
from cgankd.stages.train_cgan import train_cgan
from cgankd.train.recipe import checked_recipe

SETTINGS = {
    "fp32": {"amp": "fp32", "channels_last": False},
    "channels_last": {"amp": "fp32", "channels_last": True},
    "bf16_channels_last": {"amp": "bf16", "channels_last": True},
}
DIGITS_GAN = {"native_resolution": 8, "mode_seeking": 0.2}  # config/config.yaml's gan.options


def net_loop(device, steps, resolution, width, folder):
    data = digits_tensorset(1200, resolution)
    recipe = checked_recipe({"steps": steps, "batch_size": 64, "eval_every": steps,
                             "checkpoint_every": steps, "crop_pad": 2, "flip": False}, "b")

    def run(accel):
        checkpoint = folder / f"w{width}.pt"
        fit_cnn(data, recipe, resolution, {"width": width, "blocks": 3}, device, checkpoint,
                accel)
        checkpoint.unlink(missing_ok=True)  # no resume between rounds
    return run


def gan_loop(device, iterations, resolution, folder):
    images, labels = digits_like(500, resolution)
    split = Split(images, labels, np.arange(len(labels)),
                  {"task": "classification", "num_classes": 10})

    def run(accel):
        out = folder / "gan"
        train_cgan(split, {**DIGITS_GAN, "iterations": iterations, "sample_every": 0,
                           "checkpoint_every": iterations}, out, device=str(device), seed=0,
                   progress=False, accel=accel)
        (out / "checkpoint.pt").unlink(missing_ok=True)  # no resume between rounds
    return run


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=3)
    cli.add_argument("--steps", type=int, default=200, help="teacher and student steps")
    cli.add_argument("--gan-iterations", type=int, default=30)
    args = cli.parse_args()
    device = setup(args)
    result = {"device": str(device), "torch": torch.__version__, "threads": args.threads,
              "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loops = {"gan": gan_loop(device, args.gan_iterations, args.resolution, folder),
                 "teacher": net_loop(device, args.steps, args.resolution, 32, folder),
                 "student": net_loop(device, args.steps, args.resolution, 2, folder)}
        for name, run in loops.items():
            run(SETTINGS["fp32"])  # warm-up: allocator, kernels, lazy imports
            best = {s: float("inf") for s in SETTINGS}
            for _ in range(args.rounds):
                for setting, accel in SETTINGS.items():
                    best[setting] = min(best[setting], timed(lambda: run(accel), device))
            for setting in SETTINGS:
                result[f"{name}_{setting}_s"] = best[setting]
                if setting != "fp32":  # > 1: the setting is faster than fp32
                    result[f"{name}_speedup_{setting}"] = best["fp32"] / best[setting]
    report(result, [k for k in result if "_speedup_" in k], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
