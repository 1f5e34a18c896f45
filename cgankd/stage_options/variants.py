"""What the workflow expands a config into: the table's student variants, each variant's
recipe, the ladder rungs they and the quality stage read, the fake chains. Torch-free and in
one place, so rules/common.smk (which wires the jobs) and ``cgankd estimate`` (which counts
their FLOPs) cannot disagree on what a run trains."""

from collections.abc import Mapping
from typing import Any

from cgankd.stage_options.ladder import REAL, RUNGS


def student_variants(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(fakes, method) of every table row: classic half, cGAN-KD (+ KD), ablation ladder."""
    s, fake = config["students"], config["fake"]
    variants = [(REAL, m) for m in s["methods"]]
    if fake["enabled"]:
        variants += [(fake["final"], m) for m in ["none", *fake["kd_methods"]]]
        if fake["ladder"]:
            variants += [(r, "none") for r in RUNGS if r != fake["final"]]
    return variants


def student_recipe(config: Mapping[str, Any], student: str, fakes: str) -> dict[str, Any]:
    """students.recipe with the overrides of the variant family a fake set belongs to, then
    those of the student net itself for that family."""
    s = config["students"]
    family = "real" if fakes == REAL else "fakes"
    return {**s["recipe"], **(s.get("recipes") or {}).get(family, {}),
            **(s["nets"][student].get("recipes") or {}).get(family, {})}


def fake_chains(config: Mapping[str, Any]) -> list[int]:
    """The fake chains some student uses: fake.seeds entries, each chain once, in order (the
    i-th student seed trains on fake.seeds[i % len(fake.seeds)])."""
    seeds, chains = config["students"]["seeds"], config["fake"]["seeds"]
    return list(dict.fromkeys(chains[i % len(chains)] for i in range(len(seeds))))


def used_rungs(config: Mapping[str, Any]) -> list[str]:
    """The ladder rungs some student trains on, in ladder order."""
    used = {fakes for fakes, _ in student_variants(config)}
    return [rung for rung in RUNGS if rung in used]


def quality_rungs(config: Mapping[str, Any]) -> list[str]:
    """The rungs whose sample quality and CAS are measured: every rung of the ladder, whether
    or not students train on it (a pool, a filter pass and one CAS run per rung cost far less
    than the ladder's student runs)."""
    if not (config["fake"]["enabled"] and config["quality"]["enabled"]):
        return []
    return list(RUNGS)


def made_rungs(config: Mapping[str, Any]) -> list[str]:
    """Every rung some job reads (students' and quality's, in ladder order): the first fake
    chain's; the other chains make only the used rungs."""
    made = set(used_rungs(config)) | set(quality_rungs(config))
    return [rung for rung in RUNGS if rung in made]
