"""Running a study: the base point, then every (factor, level) point, each one Snakemake run.

Snakemake runs in a subprocess (``python -m snakemake``), never imported. Before a point runs,
the stages it shares with the base point are linked from the base's results folder
(``cgankd.study.stages``); the base itself first takes what it shares with the experiment's
own results folder, of the stages current there. A point whose settings equal the
base's is the base: it neither runs nor takes disk space.
"""

import subprocess
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cgankd.config import load_schema
from cgankd.config_files import load_config_file
from cgankd.errors import CgankdInputError
from cgankd.h5io import atomic_path
from cgankd.study.collect import point_rows, write_csv
from cgankd.study.figure import plot_study
from cgankd.study.plan import (Point, Study, experiment_name, load_study, plan_points,
                               study_prefix)
from cgankd.study.stages import (Stage, keep_withdrawn, same_settings, seed_results,
                                 shared_stages)

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "config" / "schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"  # the Snakefile's own default


def snakemake_command(config: Path, workdir: Path, cores: str, *args: str) -> list[str]:
    # --configfile takes every argument up to the next option: it must not come last
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
            "--configfile", str(config), "--cores", str(cores), *args]


class StudyFailed(RuntimeError):
    """A Snakemake run of the study failed; its own output says why."""


@dataclass
class StudyRun:
    study: Study
    experiment_config: Path
    prefix: str  # <experiment>-<study>
    base: Point
    points: list[Point]
    workdir: Path
    cores: str = "all"
    snakemake_args: tuple[str, ...] = ()
    echo: Callable[[str], None] = print
    failed: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        """results/<experiment>-<study>/: the point configs, study.csv and study.png."""
        return self.workdir / "results" / self.prefix

    def results(self, point: Point) -> Path:
        return self.workdir / "results" / point.experiment

    def config_path(self, point: Point) -> Path:
        return self.folder / "configs" / f"{point.experiment}.yaml"

    def write_config(self, point: Point) -> Path:
        path = self.config_path(point)
        with atomic_path(path) as tmp:
            tmp.write_text(f"# {self.study.path} point {point.factor}={point.level}, written "
                           f"by python -m cgankd.study\n"
                           + yaml.safe_dump(point.config, sort_keys=False))
        return path

    def snakemake(self, config: Path, *args: str, capture: bool = False
                  ) -> subprocess.CompletedProcess:
        cmd = snakemake_command(config, self.workdir, self.cores, *args)
        return subprocess.run(cmd, text=True, capture_output=capture, check=False)

    def summary(self, config: Path) -> dict[Path, str] | None:
        """{output file: Snakemake's plan for it} for ``config`` (its --summary), or None when
        Snakemake cannot tell."""
        # The user's Snakemake options (e.g. --rerun-triggers mtime) decide what is pending
        # for the run, so they decide it for the summary too.
        result = self.snakemake(config, "--summary", *self.snakemake_args, capture=True)
        if result.returncode != 0:
            return None
        rows = [line.split("\t") for line in result.stdout.splitlines()]
        return {self.workdir / row[0]: row[5] for row in rows
                if len(row) >= 6 and row[0] != "output_file"}

    def pending(self, config: Path) -> set[Path] | None:
        """The files Snakemake would rebuild for ``config``, or None when it cannot tell."""
        plans = self.summary(config)
        return None if plans is None else {f for f, plan in plans.items() if plan != "no update"}

    def seed(self, source: Path, point: Point, stages: Sequence[Stage], config: Path,
             pending: Collection[Path] = ()) -> tuple[str, ...]:
        """Take the stages from ``source``; returns the Snakemake arguments the point's run
        needs (forcing the jobs of files taken before and withdrawn now)."""
        target = self.results(point)
        seeded = seed_results(source, target, stages, pending)
        if seeded.linked or seeded.copied:
            self.echo(f"cgankd study: {point.experiment}: took {', '.join(s.name for s in stages)}"
                      f" from {source.name} ({seeded.linked} linked, {seeded.copied} copied)")
        if seeded.skipped:
            self.echo(f"cgankd study: {point.experiment}: {', '.join(seeded.skipped)} not taken: "
                      f"not current in {source.name}")
        if seeded.replaced:  # Snakemake's records of the old files would trigger reruns
            rel = [str(p.relative_to(self.workdir)) for p in seeded.replaced]
            self.snakemake(config, "--cleanup-metadata", *rel, capture=True)
        if not seeded.withdrawn:
            return ()
        outputs = set(self.summary(config) or ())
        keep_withdrawn(target, outputs)
        force = [str(p.relative_to(self.workdir)) for p in seeded.withdrawn if p in outputs]
        if force:
            self.echo(f"cgankd study: {point.experiment}: {len(force)} files taken before are "
                      f"no longer shared: removed, their jobs forced")
        return ("--forcerun", *force) if force else ()


def prepare(study_path: str | Path, configfile: str | Path | None, workdir: str | Path,
            factors: Sequence[str] = (), **kwargs: Any) -> StudyRun:
    """Read the study and the experiment config, plan the points (only ``factors`` if given)."""
    study = load_study(study_path)
    config_path = Path(configfile) if configfile else DEFAULT_CONFIG
    experiment_config = load_config_file(config_path)  # its `base:` chain merged in
    schema = load_schema(SCHEMA)
    base, points = plan_points(study, experiment_config, schema)
    unknown = sorted(set(factors) - {f.name for f in study.factors})
    if unknown:
        raise CgankdInputError(f"--factor {unknown[0]}: not a factor of {study.path}; factors: "
                               f"{', '.join(f.name for f in study.factors)}")
    if factors:
        points = [p for p in points if p.factor in factors]
    prefix = study_prefix(experiment_name(experiment_config, schema), study)
    return StudyRun(study, config_path.resolve(), prefix, base, points,
                    Path(workdir).resolve(), **kwargs)


def _seed_base_from_experiment(run: StudyRun, schema: Mapping[str, Any], config: Path
                               ) -> tuple[str, ...]:
    """Take the base's shared stages from the experiment's own run, those of them that are
    current there (a file Snakemake would rebuild must not become the base's)."""
    experiment_config = load_config_file(run.experiment_config)
    source = run.workdir / "results" / experiment_name(experiment_config, schema)
    stages, pending = [], None
    if source.is_dir():
        pending = run.pending(run.experiment_config)
        if pending is not None:
            stages = shared_stages(experiment_config, run.base.config, schema)
    return run.seed(source, run.base, stages, config, pending or ())


def execute(run: StudyRun, dry_run: bool = False) -> list[dict[str, Any]]:
    """Run (or, with ``dry_run``, plan) the base and every point; return the study's rows."""
    schema = load_schema(SCHEMA)
    base_config = run.write_config(run.base)
    dry = ("-n",) if dry_run else ()
    force = _seed_base_from_experiment(run, schema, base_config)
    run.echo(f"cgankd study: base point {run.base.experiment}")
    # --forcerun last: it takes every argument up to the next option
    if run.snakemake(base_config, *run.snakemake_args, *dry, *force).returncode != 0:
        raise StudyFailed(f"the base point {run.base.experiment} failed (config "
                          f"{base_config}); Snakemake's output above says why")
    # A real run has just brought the base up to date; a dry run takes only its current stages.
    pending = run.pending(base_config) if dry_run else set()
    sources: dict[str, Path] = {}
    for point in run.points:
        if same_settings(point.config, run.base.config, schema):
            run.echo(f"cgankd study: {point.factor}={point.level} is the base point")
            sources[point.experiment] = run.results(run.base)
            continue
        config = run.write_config(point)
        stages = [] if pending is None else shared_stages(run.base.config, point.config, schema)
        force = run.seed(run.results(run.base), point, stages, config, pending or ())
        run.echo(f"cgankd study: point {point.experiment}")
        if run.snakemake(config, *run.snakemake_args, *dry, *force).returncode != 0:
            run.failed.append(point.experiment)
        sources[point.experiment] = run.results(point)
    name = run.study.name
    rows = point_rows(name, run.base, run.results(run.base))
    for point in run.points:
        rows += point_rows(name, point, sources[point.experiment])
    return rows


def report(run: StudyRun, rows: Sequence[Mapping[str, Any]]) -> tuple[Path, Path]:
    csv_path, png_path = run.folder / "study.csv", run.folder / "study.png"
    write_csv(rows, csv_path)
    plot_study(rows, png_path, title=f"{run.prefix}: {run.study.description or run.study.name}")
    return csv_path, png_path

