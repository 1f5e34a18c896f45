"""Training overhead: the pipeline's GAN and student loops against bare loops of the same nets.

- student: ``cgankd.train.trainer.fit`` (batching, augmentation, schedule, validation,
  checkpoints, logging) against a bare loop: forward, CE, backward, SGD step on pre-sliced
  batches of the same size;
- GAN: ``cgankd.stages.train_cgan.train_cgan`` (DiffAugment, EMA, logging, checkpoints, samples)
  against a bare loop of n_dis hinge D steps and one G step per iteration, no augmentation.
Reported as bare / pipeline time ratios (target >= 1 / 1.3 = 0.77) and written as JSON.
``--amp``, ``--channels-last`` and ``--compile`` set the ``accel`` options (cgankd/accel.py);
the bare loops use the same resolved settings (autocast, layout, compilation), so the ratio
measures the pipeline's bookkeeping, not the options.

    python benchmarks/bench_training.py [--device auto] [--steps 300] [--amp bf16] [--out FILE]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import parser, peak_rss_mb, report, setup, timed

from cgankd.accel import Accel, backward_step, resolve_accel
from cgankd.conventions import to_float
from cgankd.gan.models import build_discriminator, build_generator
from cgankd.stages.train_cgan import resolve_options, train_cgan
from cgankd.h5io import Split
from cgankd.kd.objective import DistillObjective
from cgankd.nets import build_net
from cgankd.train.recipe import checked_recipe
from cgankd.train.tensorset import TensorSet
from cgankd.train.trainer import fit


def digits_like(n: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 255, (n, 1, resolution, resolution), dtype=np.uint8),
            np.arange(n) % 10)


def digits_tensorset(n: int, resolution: int) -> TensorSet:
    images, labels = digits_like(n, resolution)
    return TensorSet(torch.from_numpy(images), torch.from_numpy(labels), torch.arange(n))


def fit_cnn(data: TensorSet, recipe: dict, resolution: int, net_kwargs: dict, device,
            checkpoint: Path, accel_options) -> None:
    """The pipeline's student loop (``fit``, NOKD objective) on a fresh cnn, seed 0; the data
    doubles as validation."""
    torch.manual_seed(0)
    net = build_net("cnn", 10, 1, **net_kwargs)
    objective = DistillObjective("none", task="classification", student=net, teacher=None,
                                 sample_input=torch.zeros(2, 1, resolution, resolution),
                                 n_data=len(data))
    fit(objective, net, data, data, recipe, task="classification", label_scale=None,
        device=device, seed=0, checkpoint_path=checkpoint,
        log_path=checkpoint.with_suffix(".jsonl"), fingerprint=str(accel_options),
        progress=False, accel=accel_options)


def bench_student(device, steps, batch, resolution, net_kwargs, folder, accel_options):
    data = digits_tensorset(1200, resolution)
    recipe = checked_recipe({"steps": steps, "batch_size": batch, "eval_every": steps // 3,
                             "checkpoint_every": steps // 2, "crop_pad": 2, "flip": False}, "b")

    def pipeline():
        fit_cnn(data, recipe, resolution, net_kwargs, device, folder / "ck.pt", accel_options)

    acc = resolve_accel(accel_options, device)

    def bare():
        torch.manual_seed(0)
        net = acc.prepare_model(build_net("cnn", 10, 1, **net_kwargs).to(device))
        forward = acc.compiled(net)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        scaler = acc.grad_scaler()
        x_all = to_float(data.images).to(device)
        y_all = data.labels.to(device)
        rows = torch.randint(0, len(data), (steps, batch), generator=torch.Generator()
                             .manual_seed(0)).to(device)
        for step in range(steps):
            with acc.autocast():
                loss = F.cross_entropy(forward(acc.prepare_input(x_all[rows[step]])),
                                       y_all[rows[step]])
            backward_step(loss, opt, scaler)

    bare()  # warm-up: allocator, kernels, lazy imports (and compilation, when asked)
    return timed(bare, device), timed(pipeline, device), acc


def bench_gan(device, iterations, resolution, options, folder, accel_options):
    images, labels = digits_like(200, resolution)
    split = Split(images, labels, np.arange(len(labels)),
                  {"task": "classification", "num_classes": 10})
    opts = resolve_options({**options, "iterations": iterations, "sample_every": 0,
                            "checkpoint_every": max(1, iterations // 2)}, "classification")

    def pipeline():
        train_cgan(split, opts, folder / "gan", device=str(device), seed=0, progress=False,
                   accel=accel_options)

    acc: Accel = resolve_accel(accel_options, device, auto_amp=False)  # as train_cgan does

    def bare():
        torch.manual_seed(0)
        common = {"resolution": resolution, "channels": 1, "condition": "class",
                  "num_classes": 10, "dim_cond": 0, "attention_res": None}
        G = build_generator("biggan", **common, dim_z=opts["dim_z"], ch=opts["g_ch"],
                            mults=opts["g_mults"], dim_shared=opts["dim_shared"],
                            hier=opts["hier"]).to(device)
        D = build_discriminator("biggan", **common, ch=opts["d_ch"], mults=opts["d_mults"]
                                ).to(device)
        acc.prepare_model(G)
        acc.prepare_model(D)
        g_forward, d_forward = acc.compiled(G), acc.compiled(D)
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.999))
        scaler_g, scaler_d = acc.grad_scaler(), acc.grad_scaler()
        real_all = acc.prepare_input(to_float(torch.from_numpy(images)).to(device))
        y_all = torch.from_numpy(labels).to(device)
        n = opts["batch_size"]
        for _ in range(iterations):
            for _ in range(opts["n_dis"]):
                idx = torch.randint(0, len(y_all), (n,), device=device)
                y = y_all[idx]
                with torch.no_grad(), acc.autocast():
                    fake = g_forward(torch.randn(n, opts["dim_z"], device=device), y)
                with acc.autocast():
                    out = d_forward(torch.cat([real_all[idx], fake.float()]),
                                    torch.cat([y, y])).float()
                loss = F.relu(1 - out[:n]).mean() + F.relu(1 + out[n:]).mean()
                backward_step(loss, opt_d, scaler_d)
            y = y_all[torch.randint(0, len(y_all), (n,), device=device)]
            with acc.autocast():
                out = d_forward(g_forward(torch.randn(n, opts["dim_z"], device=device), y), y)
            backward_step(-out.float().mean(), opt_g, scaler_g)

    bare()
    return timed(bare, device), timed(pipeline, device), acc


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--steps", type=int, default=300)
    cli.add_argument("--gan-iterations", type=int, default=60)
    cli.add_argument("--amp", default="auto", help="accel.amp: auto, fp32, bf16 or fp16")
    cli.add_argument("--channels-last", default="auto", choices=("auto", "true", "false"))
    cli.add_argument("--compile", action="store_true", help="accel.compile: torch.compile")
    args = cli.parse_args()
    device = setup(args)
    accel_options = {"amp": args.amp, "compile": args.compile,
                     "channels_last": {"true": True, "false": False}.get(args.channels_last,
                                                                        "auto")}
    gan_options = {}  # the GAN's own 16-px defaults, as the digits default uses them
    with tempfile.TemporaryDirectory() as tmp:
        s_bare, s_pipe, s_acc = bench_student(device, args.steps, 64, args.resolution,
                                              {"width": 4, "blocks": 3}, Path(tmp), accel_options)
        g_bare, g_pipe, g_acc = bench_gan(device, args.gan_iterations, args.resolution,
                                          gan_options, Path(tmp), accel_options)
    result = {"device": str(device), "torch": torch.__version__, "threads": args.threads,
              "student_accel": s_acc.summary(), "gan_accel": g_acc.summary(),
              "student_steps": args.steps, "student_bare_s": s_bare, "student_pipeline_s": s_pipe,
              "student_bare_over_pipeline": s_bare / s_pipe,  # target >= 0.77
              "gan_iterations": args.gan_iterations, "gan_bare_s": g_bare,
              "gan_pipeline_s": g_pipe, "gan_bare_over_pipeline": g_bare / g_pipe,
              "peak_rss_mb": peak_rss_mb()}  # both loops and both sides: the process's peak
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    report(result, ("student_bare_over_pipeline", "gan_bare_over_pipeline",
                    *(k for k in result if k.startswith("peak_"))), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
