"""Which finished stages a study point can take from another run, and taking them.

Two configs that agree on every key a stage reads (and every key its upstream stages read)
give that stage the same outputs, so a point links them from the base point instead of
training again. ``STAGES`` lists, per stage, the files it leaves under ``results/<experiment>/``
and the config key paths it and its upstream read: the same slices the rules pass as
``params``. Snakemake keeps no metadata for a linked file, so it takes it as up to date (its
mtime, shared with the source, keeps the order of the source run); the key lists must
therefore cover every key those params read: a key left out would reuse a stale stage.
``tests/test_study.py`` fails when the schema grows a section no stage lists.

Large binary outputs (.h5, .pt) are hard links: every writer replaces them through a rename,
never in place, so a rerun in the point cannot touch the base's file. Everything else (logs,
Snakemake's benchmark files, JSON) is copied with its mtime, since Snakemake rewrites
benchmark files in place. A file taken once stays only while it is still shared: the target
folder's manifest lists what was taken, and a file no longer shared is removed and its job
forced, for Snakemake to rebuild it (it would take a file it has no record of as current
forever).
"""

import fnmatch
import json
import os
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgankd.h5io import atomic_path
from cgankd.study.plan import deep_merge
from cgankd.train.recipe import RECIPE_DEFAULTS

LINKED_SUFFIXES = (".h5", ".pt")  # written only through a rename (h5io.atomic_path)
MANIFEST = ".study_taken.json"  # in a target folder: the files taken, with size and mtime
RUNGS = ("unprocessed", "subsampled", "filtered", "relabelled")  # rules/common.smk's ladder


def _job_files(*jobs: str) -> tuple[str, ...]:
    """A job's log and benchmark patterns (rules/common.smk's log_path, benchmark_path)."""
    return tuple(p for job in jobs for p in (f"logs/{job}.log", f"benchmarks/{job}.tsv"))


DATA = ("data",)
TEACHER = (*DATA, "teacher", "device", "accel")
GAN = (*DATA, "gan", "device", "accel")
# the DR fit takes the sampler's label window (cgankd.stage_options.dre.with_sampler_window)
DRE = (*GAN, "dre", "subsample.options.label_window", "subsample.options.zeta_mult")
POOLS = (*DRE, "subsample")
FAKES = (*POOLS, *TEACHER, "filter", "fake.count")
# Real-only students: the seed and net are in the path, so students.seeds and .methods only
# decide which of them exist, not what one of them holds.
REAL = (*TEACHER, "kd_teacher", "students.nets", "students.recipe", "students.recipes.real",
        "kd")
# A fake chain is assigned by the seed's place in students.seeds; fake.final names the row.
FAKE_STUDENTS = (*FAKES, *REAL, "students.recipes.fakes", "students.seeds", "fake.seeds",
                 "fake.final", "fake.init")
# The rho chosen on validation (filter.select_rho): the first chain's final-rung pool, and the
# first student net trained with the fakes' recipe.
RHO_SELECTION = (*FAKES, "students.nets", "students.recipe", "students.recipes.fakes",
                 "students.seeds", "fake.seeds", "fake.final")


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]  # dotted config key paths read by the stage and its upstream
    files: tuple[str, ...]  # fnmatch patterns under results/<experiment>/ ('*' spans '/')


def _students(fakes: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for f in fakes for p in (
        f"students/*/{f}/*", *_job_files(f"train_student/*/{f}/*", f"evaluate/students/*/{f}/*")))


STAGES = (
    Stage("data", DATA, ("data/*", *_job_files("prepare_data"))),
    Stage("teacher", TEACHER, ("teacher/*", *_job_files("train_teacher", "import_teacher",
                                                         "evaluate/teacher"))),
    Stage("cgan", GAN, ("cgan/*", *_job_files("train_cgan"))),
    Stage("dre", DRE, ("dre/*", *_job_files("fit_dre"))),
    Stage("pools", POOLS, ("fake/chain*/pool_*", *_job_files("subsample_*"))),
    Stage("fakes", FAKES, (*(f"fake/chain*/{r}.h5" for r in RUNGS),
                           *_job_files("filter_relabel_*"))),
    Stage("rho_selection", RHO_SELECTION, ("fake/rho_selection.*", *_job_files("select_rho"))),
    Stage("real_students", REAL, _students(["real"])),
    Stage("fake_students", FAKE_STUDENTS, _students(RUNGS)),
    Stage("convergence", (*REAL, "convergence"),
          ("convergence/*", *_job_files("train_convergence/*", "evaluate/convergence/*"))),
    Stage("metric_net", (*DATA, "quality", "device", "accel"),
          ("quality/metric_net*", *_job_files("train_metric_net"))),
    Stage("quality_extractor", (*DATA, "quality", "device", "accel"),
          ("quality/extractor*", *_job_files("train_quality_extractor"))),
)

# Recipes whose defaults live in code (cgankd/train/recipe.py), not in the schema.
RECIPE_PATHS = (("teacher", "recipe"), ("students", "recipe"), ("quality", "recipe"))


def fill_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the schema's defaults filled in where a key is missing (as Snakemake's
    ``validate`` does), so a level that spells out a default is no change."""
    out = dict(config)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if isinstance(out.get(key), Mapping):
            out[key] = fill_defaults(out[key], sub)
    return out


def normalized(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    out = fill_defaults(config, schema)
    for section, key in RECIPE_PATHS:
        if isinstance(out.get(section), Mapping):
            out[section] = dict(out[section])
            out[section][key] = deep_merge(RECIPE_DEFAULTS, out[section].get(key) or {})
    out.pop("experiment", None)  # the name of the results folder, not a setting
    return out


def changed_paths(a: Any, b: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths where two config trees differ (a key missing on one side differs)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                yield (*prefix, str(key))
            else:
                yield from changed_paths(a[key], b[key], (*prefix, str(key)))
    elif a != b:
        yield prefix


def _affects(path: tuple[str, ...], reads: Sequence[str]) -> bool:
    """A change at ``path`` reaches a stage reading ``reads`` when one path holds the other."""
    for read in reads:
        parts = tuple(read.split("."))
        n = min(len(parts), len(path))
        if parts[:n] == path[:n]:
            return True
    return False


def shared_stages(source: Mapping[str, Any], target: Mapping[str, Any],
                  schema: Mapping[str, Any]) -> list[Stage]:
    """The stages whose outputs ``target`` can take from a finished ``source`` run."""
    changed = list(changed_paths(normalized(source, schema), normalized(target, schema)))
    return [s for s in STAGES if not any(_affects(p, s.reads) for p in changed)]


def same_settings(a: Mapping[str, Any], b: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    """True when two configs differ in nothing but their experiment name."""
    return not any(changed_paths(normalized(a, schema), normalized(b, schema)))


@dataclass
class Seeded:
    linked: int = 0
    copied: int = 0
    replaced: list[Path] = field(default_factory=list)  # target files that held other content
    withdrawn: list[Path] = field(default_factory=list)  # removed, not rebuilt yet
    skipped: list[str] = field(default_factory=list)  # stages not current in the source


def stage_files(results: Path, stage: Stage) -> list[Path]:
    """The stage's files under one results folder (no hidden temporaries), sorted."""
    if not results.is_dir():
        return []
    found = []
    for path in results.rglob("*"):
        rel = path.relative_to(results).as_posix()
        if path.is_file() and not path.name.startswith(".") and any(
                fnmatch.fnmatchcase(rel, pattern) for pattern in stage.files):
            found.append(path)
    return sorted(found)


def _same(src: Path, dst: Path) -> bool:
    if not dst.exists():
        return False
    if os.path.samefile(src, dst):
        return True
    a, b = src.stat(), dst.stat()
    return (dst.suffix not in LINKED_SUFFIXES and a.st_size == b.st_size
            and a.st_mtime_ns == b.st_mtime_ns)


def _place(src: Path, dst: Path, fresh: bool) -> bool:
    """Put ``src`` at ``dst`` through a temporary name; True when it is a hard link."""
    tmp = dst.with_name(f".{dst.name}.study-{os.getpid()}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    linked = False
    try:
        if src.suffix in LINKED_SUFFIXES and not fresh:
            try:
                os.link(src, tmp)
                linked = True
            except OSError:  # another file system, or links not allowed: a copy does too
                pass
        if not linked:
            shutil.copy2(src, tmp)
            if fresh:
                os.utime(tmp)  # newer than whatever the target built on the old file
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return linked


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _manifest(target: Path) -> tuple[dict[str, list[int]], list[str]]:
    """(files taken: size and mtime when taken, files withdrawn and not rebuilt yet)."""
    path = target / MANIFEST
    data = json.loads(path.read_text()) if path.is_file() else {}
    return data.get("taken", {}), data.get("withdrawn", [])


def _write_manifest(target: Path, taken: Mapping[str, list[int]], withdrawn: Sequence[str]
                    ) -> None:
    if taken or withdrawn or (target / MANIFEST).is_file():
        with atomic_path(target / MANIFEST) as tmp:
            tmp.write_text(json.dumps({"taken": dict(taken), "withdrawn": sorted(withdrawn)},
                                      indent=0, sort_keys=True))


def keep_withdrawn(target: Path, keep: Collection[Path]) -> None:
    """Forget withdrawn files not in ``keep`` (no job of the target's workflow makes them)."""
    taken, withdrawn = _manifest(target)
    _write_manifest(target, taken, [rel for rel in withdrawn if target / rel in keep])


def seed_results(source: Path, target: Path, stages: Sequence[Stage],
                 pending: Collection[Path] = ()) -> Seeded:
    """Link or copy the stages' files from results folder ``source`` into ``target``.

    A stage with a file in ``pending`` (one Snakemake would rebuild in ``source``) is not
    taken. A target file already holding the same file is left alone. One holding something
    else (the target's own older run, or the source's previous version) is replaced by a copy
    stamped now, so Snakemake reruns the target's jobs that were built on the old file; the
    caller clears Snakemake's records of those files (``Seeded.replaced``).

    A file taken by an earlier call (the target's manifest lists them) and no longer taken is
    removed, if still as taken: Snakemake keeps no record of it, so would take it as current
    forever. Snakemake does not rebuild a missing file whose consumers look current, so the
    removed files stay listed (``Seeded.withdrawn``) until they exist again, for the caller to
    force their jobs (``--forcerun``).
    """
    seeded = Seeded()
    taken_before, withdrawn = _manifest(target)
    taken = {}
    for stage in stages:  # upstream first: replaced files get increasing mtimes in DAG order
        files = stage_files(source, stage)
        if any(src in pending for src in files):
            seeded.skipped.append(stage.name)
            continue
        for src in files:
            rel = src.relative_to(source).as_posix()
            dst = target / rel
            if not _same(src, dst):
                replacing = dst.exists()
                if _place(src, dst, fresh=replacing):
                    seeded.linked += 1
                else:
                    seeded.copied += 1
                if replacing:
                    seeded.replaced.append(dst)
            taken[rel] = _stamp(dst)
    for rel, stamp in taken_before.items():
        dst = target / rel
        if rel not in taken and dst.is_file() and _stamp(dst) == stamp:
            dst.unlink()
            withdrawn.append(rel)
    withdrawn = sorted({rel for rel in withdrawn if not (target / rel).exists()})
    seeded.withdrawn = [target / rel for rel in withdrawn]
    _write_manifest(target, taken, withdrawn)
    return seeded
