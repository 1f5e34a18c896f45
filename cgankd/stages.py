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


def stage_source_hash(stage: str) -> str:
    """Content hash of the code ``stage`` runs: its subpackages plus the core modules."""
    return source_hash(*core_modules(), *STAGE_SOURCES[stage])
