"""Which package code each pipeline stage runs, for the source hash passed as a rule param.

Kept free of heavy imports: the Snakefile imports it to compute params at planning time.
Every stage also depends on the package's top-level core modules (I/O, conventions, options),
so a change there reruns everything, which is the safe direction.
"""

from cgankd.provenance import PACKAGE_DIR, source_hash

STAGE_SOURCES: dict[str, tuple[str, ...]] = {
    "prepare_data": ("data",),
    "train": ("nets", "kd", "train"),
    "evaluate": ("nets", "train"),
    "gan": ("gan", "train/resume.py"),  # the GAN loop checkpoints through train/resume.py
    "fake": ("gan", "dre", "sampling", "filtering", "fake", "nets", "train"),
    "metrics": ("metrics", "nets", "train"),
    "report": ("report",),
}


def core_modules() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in PACKAGE_DIR.glob("*.py")))


# Every stage's options (defaults and checks) live in this torch-free package: a change
# there reruns the stages, as a change in the stage's own package does.
OPTIONS_PACKAGE = "stage_options"


def stage_source_hash(stage: str) -> str:
    """Content hash of the code ``stage`` runs: its subpackages, the options package and the
    core modules."""
    return source_hash(*core_modules(), OPTIONS_PACKAGE, *STAGE_SOURCES[stage])
