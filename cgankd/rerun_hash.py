"""Each pipeline stage's source hash, passed as a rule param so that a code change reruns the
stages that run that code, and only those.

A stage is named by its entry modules: what its workflow_scripts adapters import, plus the
module ``cgankd.launch`` imports by name for the stage (the one import a static reading of the
adapters cannot see). The hash follows every ``cgankd`` import from there (see
``cgankd.code_hash``), so no list of a stage's subpackages is kept by hand.
Kept free of heavy imports: the Snakefile imports it to compute params at planning time.
"""

import functools
from pathlib import Path

from cgankd.code_hash import PACKAGE_DIR, code_hash, covered_modules

# Every adapter runs its call inside cgankd.jobs.stage_job; the launcher runs the two stages
# that may use several GPUs (the adapter imports cgankd.launch, which imports the entry by name).
_JOB = ("cgankd.jobs",)
_LAUNCHED = ("cgankd.jobs", "cgankd.launch")
STAGE_ENTRIES: dict[str, tuple[str, ...]] = {
    "prepare_data": (*_JOB, "cgankd.data"),
    # teacher, students, metric net, CAS net and the convergence check
    "train": (*_LAUNCHED, "cgankd.train.stages", "cgankd.train.budget"),
    "import_teacher": (*_JOB, "cgankd.train.given_teacher"),  # teacher.weights given
    "evaluate": (*_JOB, "cgankd.evaluate"),
    "gan": (*_LAUNCHED, "cgankd.gan.train"),
    # fit_dre, subsample and filter_relabel
    "fake": (*_JOB, "cgankd.fake.dre_stage", "cgankd.fake.subsample_stage",
             "cgankd.fake.filter_stage"),
    "metrics": (*_JOB, "cgankd.metrics"),
    "report": (*_JOB, "cgankd.report.build"),
}


def stage_modules(stage: str, root: Path = PACKAGE_DIR) -> set[str]:
    """The ``cgankd`` modules the hash of ``stage`` covers."""
    return covered_modules(_entries(stage), root)


def _entries(stage: str) -> tuple[str, ...]:
    if stage not in STAGE_ENTRIES:
        raise ValueError(f"unknown stage {stage!r} for a source hash; known: "
                         f"{', '.join(STAGE_ENTRIES)}")
    return STAGE_ENTRIES[stage]


@functools.lru_cache(maxsize=None)
def _cached_hash(stage: str) -> str:
    return code_hash(_entries(stage))


def stage_source_hash(stage: str, root: Path | None = None) -> str:
    """Hash of the code ``stage`` runs; ``root`` is another copy of the package (tests).

    The installed package's hashes are cached per process: rules ask for the same stage many
    times while Snakemake plans, and the code does not change meanwhile.
    """
    if root is None:
        return _cached_hash(stage)
    return code_hash(_entries(stage), root)
