"""Each workflow rule's source hash, passed as a rule param so that a code change reruns the
rules that run that code, and only those.

A rule's code is its stage module ``cgankd.stages.<rule>`` (whose ``run`` its adapter calls),
the job wrapper ``cgankd.jobs`` every adapter runs it in, and ``cgankd.launch`` for the rules
whose adapters go through ``run_stage``. The hash follows every ``cgankd`` import from there
(see ``cgankd.code_hash``), so no list of a rule's modules is kept by hand: a new rule gets
its hash by having its module.
Kept free of heavy imports: the Snakefile imports it to compute params at planning time.
"""

import functools
from pathlib import Path

from cgankd.code_hash import PACKAGE_DIR, code_hash, covered_modules

STAGES = "stages"  # the package folder with one module per rule
_JOB = "cgankd.jobs"  # every adapter runs its stage inside cgankd.jobs.stage_job
# The rules whose adapters call cgankd.launch.run_stage (torchrun on several GPUs);
# tests/test_stage_hashes.py checks this against the adapters.
LAUNCHED = frozenset({"train_teacher", "train_student", "train_convergence", "train_metric_net",
                      "train_cas", "train_cgan"})


def stage_names(root: Path = PACKAGE_DIR) -> tuple[str, ...]:
    """The rules with a stage module ``stages/<rule>.py`` (``_shared`` modules are not rules)."""
    return tuple(sorted(p.stem for p in (root / STAGES).glob("*.py")
                        if not p.stem.startswith("_")))


def stage_entries(stage: str, root: Path = PACKAGE_DIR) -> tuple[str, ...]:
    """The modules whose import graph is rule ``stage``'s code."""
    known = stage_names(root)
    if stage not in known:
        raise ValueError(f"unknown stage {stage!r} for a source hash; known: "
                         f"{', '.join(known)}")
    launched = ("cgankd.launch",) if stage in LAUNCHED else ()
    return (_JOB, *launched, f"cgankd.{STAGES}.{stage}")


# rule -> its entry modules, derived from the stage modules
STAGE_ENTRIES: dict[str, tuple[str, ...]] = {stage: stage_entries(stage)
                                             for stage in stage_names()}


def stage_modules(stage: str, root: Path = PACKAGE_DIR) -> set[str]:
    """The ``cgankd`` modules the hash of ``stage`` covers."""
    return covered_modules(stage_entries(stage, root), root)


@functools.lru_cache(maxsize=None)
def _cached_hash(stage: str) -> str:
    return code_hash(stage_entries(stage))


def stage_source_hash(stage: str, root: Path | None = None) -> str:
    """Hash of the code ``stage`` runs; ``root`` is another copy of the package (tests).

    The installed package's hashes are cached per process: rules ask for the same stage many
    times while Snakemake plans, and the code does not change meanwhile.
    """
    if root is None:
        return _cached_hash(stage)
    return code_hash(stage_entries(stage, root), root)
