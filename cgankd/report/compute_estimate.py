"""Estimated GPU-hours of one pipeline run, from arithmetic: an estimate, not measured.

Each stage's nets are built through the package's registries at batch 1 and their forward
FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions,
2 FLOPs per multiply-add; norms, activations and the optimizer are not counted). A training
image costs forward + backward ~ 3x forward (the backward pass computes gradients for both
inputs and weights, ~2x forward). The image passes come from the config: steps x batch (or
epochs x the variant's own training set, real + fakes), over the variants, seeds and nets the
workflow expands (cgankd/stage_options/variants.py), GAN iterations, the density-ratio fit, the
rejection sampler's proposals, filtering, quality and evaluation. FLOPs over a sustained throughput
(peak x utilisation) give GPU-hours.

Not counted: data loading, augmentation, checkpoints, CcGAN-ILI's label-embedding
pretraining, the DR fit's held-out fakes. A KD student pays one teacher forward per drawn
image (an upper bound: the teacher cache, cgankd/kd/teacher_cache.py, can make it less).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cgankd.report.compute_flops import dre_flops, extractor_flops, gan_flops, net_flops
from cgankd.report.compute_sizes import (BACKWARD_FACTOR, DEFAULT_ACCEPTANCE,
                                         DEFAULT_UTILISATION, H200_BF16_DENSE_TFLOPS, LABEL,
                                         Sizes, split_sizes)
from cgankd.stage_options.dre import checked_extractor_options
from cgankd.stage_options.fake import check_label_grid
from cgankd.stage_options.ladder import REAL, RUNGS
from cgankd.stage_options.recipe import checked_recipe
from cgankd.stage_options.variants import (fake_chains, made_rungs, quality_rungs,
                                           student_recipe, student_variants, used_rungs)
from cgankd.train.budget import scaled_budget
from cgankd.train.recipe import resolved_steps

TRAIN_FACTOR = 1.0 + BACKWARD_FACTOR  # forward + backward per training image


@dataclass
class Run:
    """One training run's image passes (train) and forward-only passes (val, test, KD)."""

    train_images: int
    eval_images: int


def training_run(recipe_overrides: Mapping[str, Any] | None, n_train: int, sizes: Sizes,
                 where: str) -> Run:
    """Images a run draws (steps x batch, or epochs x its own set) and the images it only
    scores: a validation pass every eval_every steps, then the test set (evaluate)."""
    recipe = checked_recipe(recipe_overrides, where)
    batch = min(int(recipe["batch_size"]), int(n_train))
    steps = resolved_steps(recipe, n_train)  # the trainer's own count
    evals = steps // int(recipe["eval_every"]) * sizes.val + sizes.test
    return Run(steps * batch, evals)


class Tally:
    """FLOPs per stage, with the run count shown beside each."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}

    def add(self, stage: str, flops: float, runs: int = 1) -> None:
        row = self.stages.setdefault(stage, [0, 0.0])
        row[0] += runs
        row[1] += float(flops)

    def train(self, stage: str, run: Run, fwd: int, teacher_fwd: int = 0) -> None:
        """A training run: 3x forward per drawn image (+ a KD teacher's forward), forward only
        on scored images."""
        self.add(stage, run.train_images * (TRAIN_FACTOR * fwd + teacher_fwd)
                 + run.eval_images * fwd)


def estimate(config: Mapping[str, Any]) -> dict[str, Any]:
    """FLOPs per stage of the run ``config`` (resolved: compute_sizes.resolve_config)."""
    from cgankd.stage_options.fake import checked_select_rho, checked_subsample_options

    sizes, tally, cache = split_sizes(config), Tally(), {}
    n, fake, quality = sizes.train, config["fake"], config["quality"]

    def fwd(spec: Mapping[str, Any]) -> int:
        key = repr((spec["net"], sorted((spec.get("kwargs") or {}).items())))
        if key not in cache:
            cache[key] = net_flops(spec, sizes)
        return cache[key]

    teacher_fwd = fwd(config["teacher"])
    kd_fwd = fwd(config["kd_teacher"] or config["teacher"])
    for section in ("teacher", "kd_teacher"):
        spec = config.get(section)
        if spec and not spec.get("weights"):  # given weights: imported, scored on test only
            tally.train("teachers", training_run(spec.get("recipe"), n, sizes,
                                                 f"{section}.recipe"), fwd(spec))
        elif spec:
            tally.add("teachers", sizes.test * fwd(spec))
    nets, seeds = config["students"]["nets"], config["students"]["seeds"]
    variants = student_variants(config)
    for name, spec in nets.items():
        for fakes, method in variants:
            extra = fake["count"] if fakes != REAL else 0  # epochs: its own set, fakes too
            run = training_run(student_recipe(config, name, fakes), n + extra, sizes,
                               "students.recipe")
            for _ in seeds:
                tally.train("students", run, fwd(spec), kd_fwd if method != "none" else 0)
    conv = config["convergence"]
    if conv["enabled"]:  # the teacher and NOKD of every net and seed at factor x budget
        factor = float(conv["factor"])
        if not config["teacher"]["weights"]:
            recipe = scaled_budget(config["teacher"].get("recipe"), factor, "teacher.recipe")
            tally.train("convergence", training_run(recipe, n, sizes, "teacher.recipe"),
                        teacher_fwd)
        for name, spec in nets.items():
            recipe = scaled_budget(student_recipe(config, name, REAL), factor,
                                   "students.recipe")
            run = training_run(recipe, n, sizes, "students.recipe")
            for _ in seeds:
                tally.train("convergence", run, fwd(spec))
    if fake["enabled"]:
        g_fwd, d_fwd, gan = gan_flops(config, sizes)
        batch, n_dis = int(gan["batch_size"]), int(gan["n_dis"])
        g_batch = batch * (2 if gan["mode_seeking"] else 1)  # mode seeking: two z per label
        # D step: G forward on a fake batch, D forward + backward on real and fake; G step:
        # G and D forward + backward (D's backward reaches G through its input).
        per_iteration = (n_dis * batch * (g_fwd + 2 * TRAIN_FACTOR * d_fwd)
                         + g_batch * TRAIN_FACTOR * (g_fwd + d_fwd))
        tally.add("cGAN", int(gan["iterations"]) * per_iteration)

        e_fwd, m_fwd, dre = dre_flops(config, sizes)
        tally.train("DRE", training_run(dre["extractor_recipe"], n, sizes,
                                        "dre.options.extractor_recipe"), e_fwd)
        fit = dre["fit"]
        made = fit["bank_per_real"] * n if fit["fakes"] == "bank" else fit["epochs"] * n
        # each DR step: a real and a fake batch through psi (3x), fakes made by G + extractor
        tally.add("DRE", n * e_fwd + fit["epochs"] * n * 2 * TRAIN_FACTOR * m_fwd
                  + made * (g_fwd + e_fwd), runs=0)

        sub = checked_subsample_options(config["subsample"].get("options"))
        if sizes.classes:
            groups, pool = sizes.classes, int(sub["per_class"]) * sizes.classes
        else:  # test_labels: the distinct test labels (bounded)
            groups = check_label_grid(sub["label_grid"]) or sizes.test_labels or sizes.test
            pool = groups * int(sub["per_label"])
        proposals = pool / DEFAULT_ACCEPTANCE
        burnin = int(sub["n_burnin"]) * groups
        proposals = max(proposals, burnin) if sub["reuse_burnin"] else proposals + burnin
        for i, _ in enumerate(fake_chains(config)):  # the first also feeds quality's rungs
            rungs = made_rungs(config) if i == 0 else used_rungs(config)
            for sampler in sorted({RUNGS[r]["sampler"] for r in rungs}):
                cost = pool * g_fwd if sampler == "none" else proposals * (g_fwd + e_fwd + m_fwd)
                tally.add("subsample", cost)
            for rung in rungs:  # the teacher scores the pool where it filters or relabels
                scored = RUNGS[rung]["filter"] or RUNGS[rung]["relabel"]
                tally.add("filter", pool * teacher_fwd if scored else 0)
        first = next(iter(nets), None)
        select = checked_select_rho(config["filter"].get("select_rho"))
        if select and first:
            recipe = {**student_recipe(config, first, fake["final"]), **select["recipe"]}
            run = training_run(recipe, n + fake["count"], sizes, "filter.select_rho.recipe")
            tally.add("select_rho", pool * teacher_fwd, runs=0)
            for _ in range(len(select["grid"]) * len(select["seeds"])):
                tally.train("select_rho", run, fwd(nets[first]))
        if quality["enabled"]:
            metric = fwd(quality)
            tally.train("quality", training_run(quality.get("recipe"), n, sizes,
                                                "quality.recipe"), metric)
            if quality.get("features") == "extractor":  # FID's own feature space
                x_opts = checked_extractor_options(quality.get("extractor"))
                x_fwd = extractor_flops(x_opts, sizes)
                tally.train("quality", training_run(x_opts["extractor_recipe"], n, sizes,
                                                    "quality.extractor.extractor_recipe"),
                            x_fwd)
                metric += x_fwd  # every image goes through both
            for _ in quality_rungs(config):  # embed the rung's fakes and the real images
                tally.add("quality", (fake["count"] + n + sizes.test) * metric)
            if quality["cas"] and first:  # the first net on each rung's fakes alone
                run = training_run(student_recipe(config, first, REAL), fake["count"], sizes,
                                   "students.recipe")
                for _ in range(len(quality_rungs(config)) * len(quality["cas_seeds"])):
                    tally.train("CAS", run, fwd(nets[first]))
    return {"experiment": config["experiment"], "sizes": sizes, "label": LABEL,
            "stages": {k: {"runs": int(r), "flops": f} for k, (r, f) in tally.stages.items()},
            "acceptance": DEFAULT_ACCEPTANCE, "backward_factor": BACKWARD_FACTOR}


def gpu_hours(flops: float, tflops: float, utilisation: float) -> float:
    return flops / (tflops * 1e12 * utilisation) / 3600.0


def render(result: Mapping[str, Any], tflops: float, utilisation: float) -> str:
    """The per-stage table and the total, labelled as an estimate with its assumptions."""
    s = result["sizes"]
    lines = [f"# {result['experiment']}: GPU-hours per run ({LABEL})",
             f"GPU: {tflops:g} TFLOPS peak x {utilisation:.0%} utilisation = "
             f"{tflops * utilisation:g} TFLOPS sustained (default: NVIDIA H200 bf16 dense "
             f"{H200_BF16_DENSE_TFLOPS:g}, {DEFAULT_UTILISATION:.0%}; small nets reach less)",
             f"data: train {s.train:,} / val {s.val:,} / test {s.test:,} ({s.note}); backward = "
             f"{BACKWARD_FACTOR:g}x forward; cDR-RS acceptance {DEFAULT_ACCEPTANCE:g}",
             "", "| stage | runs | PFLOPs | GPU-hours |", "|---|---:|---:|---:|"]
    total = 0.0
    for stage, row in result["stages"].items():
        total += row["flops"]
        lines.append(f"| {stage} | {row['runs']} | {row['flops'] / 1e15:,.1f} | "
                     f"{gpu_hours(row['flops'], tflops, utilisation):,.2f} |")
    lines.append(f"| **total ({LABEL})** | | {total / 1e15:,.1f} | "
                 f"**{gpu_hours(total, tflops, utilisation):,.2f}** |")
    return "\n".join(lines)


def as_json(result: Mapping[str, Any], tflops: float, utilisation: float) -> dict[str, Any]:
    """The estimate with its assumptions, GPU-hours per stage and the total."""
    stages = {k: {**row, "gpu_hours": gpu_hours(row["flops"], tflops, utilisation)}
              for k, row in result["stages"].items()}
    total = sum(row["flops"] for row in stages.values())
    return {"label": LABEL, "experiment": result["experiment"],
            "assumptions": {"peak_tflops": tflops, "utilisation": utilisation,
                            "backward_factor": BACKWARD_FACTOR,
                            "cdrrs_acceptance": DEFAULT_ACCEPTANCE,
                            "sizes": dict(vars(result["sizes"]))},
            "stages": stages, "total": {"flops": total,
                                        "gpu_hours": gpu_hours(total, tflops, utilisation)}}
