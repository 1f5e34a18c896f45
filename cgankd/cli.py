"""The ``cgankd`` command: generate images from a trained generator, describe pipeline files.

    cgankd generate results/<exp>/cgan/generator.pt --per-class 100 --out fakes.h5
    cgankd generate generator.pt --labels 0:90:0.5 --png angles/      (regression)
    cgankd info results/<exp>/fake/chain0/rung.h5 [--json]
    cgankd estimate --configfile config/experiments/cifar10_v1_50k.yaml   (GPU-hours)

Bad input (a missing file, a file that is no cgankd file or not of the kind asked for, a label
outside the generator's range) ends with one line naming it on stderr and exit status 2.
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from cgankd.errors import CgankdInputError

EXIT_BAD_INPUT = 2  # argparse's own status for a bad command line: one status for bad input
DEFAULT_SEED = 0  # of the latent draws; a seed gives the same images on any device
REGRESSION_PER_LABEL = 1  # images per label when a regression run gives no --per-class


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (its default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse_label_spec(spec: str) -> np.ndarray:
    """``START:STOP:STEP`` (both ends included when STOP lies on the grid) or ``a,b,c``."""
    try:
        if ":" in spec:
            start, stop, step = (float(v) for v in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return start + step * np.arange(count)
        return np.array([float(v) for v in spec.split(",")])
    except ValueError:
        raise CgankdInputError(f"--labels {spec!r}: expected START:STOP:STEP with STEP > 0 and "
                               f"STOP >= START, or a comma-separated list of numbers") from None


def read_labels_file(path: str) -> np.ndarray:
    """Labels from a text file: numbers separated by white space, commas or newlines; '#'
    starts a comment."""
    if not Path(path).is_file():
        raise CgankdInputError(f"{path}: file not found (--labels-file)")
    try:
        words = [w for line in Path(path).read_text().splitlines()
                 for w in line.split("#")[0].replace(",", " ").split()]
        labels = np.array([float(w) for w in words], dtype=np.float64)
    except ValueError as err:  # UnicodeDecodeError too: a binary file
        raise CgankdInputError(f"{path}: not a text list of numbers (--labels-file): "
                               f"{str(err)[:80]}") from None
    if not len(labels):
        raise CgankdInputError(f"{path}: holds no labels (--labels-file)")
    return labels


def requested_labels(args: argparse.Namespace, meta: dict[str, Any]) -> np.ndarray:
    """One entry per image to draw: class ids for classification, raw labels for regression."""
    per = args.per_class
    if meta["task"] == "classification":
        if args.labels is not None or args.grid is not None or args.labels_file is not None:
            raise CgankdInputError(f"{args.generator}: a classification generator takes "
                                   f"--per-class N, not --labels/--grid/--labels-file")
        if per is None:
            raise CgankdInputError(f"{args.generator}: a classification generator needs "
                                   f"--per-class N")
        return np.repeat(np.arange(int(meta["num_classes"]), dtype=np.int64), per)
    given = [a for a in ("labels", "grid", "labels_file") if getattr(args, a) is not None]
    if len(given) != 1:
        raise CgankdInputError(f"{args.generator}: a regression generator needs exactly one "
                               f"of --labels, --grid, --labels-file")
    low, high = float(meta["label_min"]), float(meta["label_max"])
    if args.grid is not None:
        if args.grid < 1:
            raise CgankdInputError(f"--grid must be >= 1, got {args.grid}")
        labels = np.linspace(low, high, args.grid) if args.grid > 1 else np.array([low])
    elif args.labels is not None:
        labels = parse_label_spec(args.labels)
    else:
        labels = read_labels_file(args.labels_file)
    outside = labels[(labels < low) | (labels > high)]
    if len(outside):
        raise CgankdInputError(f"{args.generator}: label {outside[0]:g} lies outside the "
                               f"generator's label range [{low:g}, {high:g}]")
    return np.repeat(labels, REGRESSION_PER_LABEL if per is None else per)


def write_png_folder(generator: str, labels: np.ndarray, out_dir: Path, *, seed: int,
                     device: str, batch_size: int) -> int:
    """PNGs of the images ``generate_to_h5`` would write for the same arguments.

    Classification: ``<class>/<n>.png``; regression: ``<label>_<n>.png``. The folder is built
    beside ``out_dir`` and renamed into place, so a killed run leaves no half folder.
    """
    import torch
    from PIL import Image

    from cgankd.conventions import to_uint8
    from cgankd.gan.generate import generate_batch, load_generator

    if out_dir.exists() and any(out_dir.iterdir()):
        raise CgankdInputError(f"{out_dir}: the --png folder exists and is not empty")
    G, meta = load_generator(generator, device)
    classification = meta["task"] == "classification"
    width = len(str(max(len(labels) - 1, 0)))
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = torch.Generator().manual_seed(seed)
    try:
        for start in range(0, len(labels), batch_size):
            chunk = labels[start:start + batch_size]
            images = to_uint8(generate_batch(G, meta, chunk, rng)).cpu().numpy()
            for i, (label, image) in enumerate(zip(chunk, images), start):
                name = (Path(str(int(label))) / f"{i:0{width}d}.png" if classification
                        else Path(f"{label:g}_{i:0{width}d}.png"))
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
                Image.fromarray(pixels).save(tmp / name)
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(labels)


def cmd_generate(args: argparse.Namespace) -> int:
    from cgankd.device import pick_device
    from cgankd.gan.generate import BATCH_SIZE, generate_to_h5
    from cgankd.file_info import describe
    from cgankd.train.resume import load_checkpoint

    if args.per_class is not None and args.per_class < 1:
        raise CgankdInputError(f"--per-class must be >= 1, got {args.per_class}")
    kind = describe(args.generator)["kind"]  # one line for a missing or foreign file
    if kind != "generator":
        raise CgankdInputError(f"{args.generator}: a {kind}, not a generator file (e.g. "
                               f"results/<exp>/cgan/generator.pt)")
    blob = load_checkpoint(args.generator)
    labels = requested_labels(args, blob)
    try:
        pick_device(args.device)
    except RuntimeError:
        raise CgankdInputError(f"--device {args.device!r}: not a torch device (auto, cpu, "
                               f"cuda, cuda:N)") from None
    batch_size = args.batch_size or BATCH_SIZE
    if batch_size < 1:
        raise CgankdInputError(f"--batch-size must be >= 1, got {batch_size}")
    if args.png is not None:
        n = write_png_folder(args.generator, labels, Path(args.png), seed=args.seed,
                             device=args.device, batch_size=batch_size)
        where = f"PNG folder {args.png}"
    else:
        n = generate_to_h5(args.generator, labels, args.out, batch_size=batch_size,
                           seed=args.seed, device=args.device, progress=sys.stderr.isatty())
        where = args.out
    what = (f"{blob['num_classes']} classes" if blob["task"] == "classification"
            else f"{len(np.unique(labels))} labels")
    print(f"wrote {n} images ({what}, seed {args.seed}) to {where}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from cgankd.file_info import as_text, describe

    for path in args.files:
        info = describe(path)
        print(json.dumps(info, indent=2, sort_keys=True, default=str) if args.json
              else as_text(info))
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from cgankd.h5io import atomic_path
    from cgankd.report.compute_estimate import as_json, estimate, render
    from cgankd.report.compute_sizes import resolve_config

    if not args.tflops > 0:
        raise CgankdInputError(f"--tflops must be > 0, got {args.tflops}")
    if not 0 < args.utilisation <= 1:
        raise CgankdInputError(f"--utilisation must lie in (0, 1], got {args.utilisation}")
    result = estimate(resolve_config(args.configfile or []))
    print(render(result, args.tflops, args.utilisation))
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(as_json(result, args.tflops, args.utilisation), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cgankd.report.compute_sizes import DEFAULT_UTILISATION, H200_BF16_DENSE_TFLOPS

    parser = _Parser(prog="cgankd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = sub.add_parser("generate", help="draw images from a generator.pt into an HDF5 "
                         "fake set or a PNG folder")
    gen.add_argument("generator", help="a generator file (results/<exp>/cgan/generator.pt)")
    gen.add_argument("--per-class", type=int, help="images per class (classification), or "
                     f"per label (regression; default {REGRESSION_PER_LABEL})")
    gen.add_argument("--labels", help="regression: START:STOP:STEP (ends included) or a,b,c")
    gen.add_argument("--grid", type=int, help="regression: N labels evenly spaced over the "
                     "generator's label range, both ends included")
    gen.add_argument("--labels-file", help="regression: a text file of labels")
    out = gen.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="HDF5 file to write (images, labels, index: the "
                     "pipeline's split layout)")
    out.add_argument("--png", help="folder of PNGs to write instead: one subfolder per class, "
                     "or the label in each file name")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED,
                     help=f"seed of the latent draws (default {DEFAULT_SEED})")
    gen.add_argument("--device", default="auto",
                     help="auto (a GPU when one is visible), cpu, cuda, cuda:N")
    gen.add_argument("--batch-size", type=int, help="images per forward pass (default: "
                     "cgankd.gan.generate.BATCH_SIZE); z is drawn batch by batch, so the "
                     "same seed gives the same images only at the same batch size")
    gen.set_defaults(run=cmd_generate)
    info = sub.add_parser("info", help="what a cgankd HDF5, model, generator or checkpoint "
                          "file holds")
    info.add_argument("files", nargs="+", help="files to describe")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=cmd_info)
    est = sub.add_parser("estimate", help="estimated GPU-hours of a pipeline run, per stage "
                         "(an estimate from counted FLOPs, not measured)")
    est.add_argument("--configfile", action="append", help="a config file, as snakemake "
                     "--configfile (repeat to overlay; none: config/config.yaml)")
    est.add_argument("--tflops", type=float, default=H200_BF16_DENSE_TFLOPS,
                     help=f"peak TFLOPS of the GPU (default {H200_BF16_DENSE_TFLOPS:g}: "
                     f"NVIDIA H200 bf16 dense)")
    est.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION,
                     help=f"sustained share of the peak (default {DEFAULT_UTILISATION:g})")
    est.add_argument("--json", help="also write the estimate and its assumptions here")
    est.set_defaults(run=cmd_estimate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CgankdInputError as err:
        print(f"cgankd {args.command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `cgankd info ... | head`
        with contextlib.suppress(OSError):
            sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
