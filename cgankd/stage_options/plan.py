"""``check_config``: every stage's option check, every registry name and the cross-field
checks, run by the workflow when it plans the run (rules/common.smk), before any job.

Torch-free (a test imports it with torch blocked), so planning stays fast. The config is the
one Snakemake holds after the schema filled its defaults. Each problem is one line naming the
config path as the user wrote it (``filter.options.rhoo``, ``students.methods[1]``).
"""

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cgankd.config import config_problem
from cgankd.errors import CgankdInputError
from cgankd.stage_options.data import check_data
from cgankd.stage_options.dre import checked_dre_options, checked_extractor_options, fit_dre_options
from cgankd.stage_options.fake import (check_pool_supplies, checked_filter_options,
                                       checked_select_rho, checked_subsample_options)
from cgankd.stage_options.gan import check_gan_resolution, checked_gan_options
from cgankd.stage_options.kd import check_kd_section, check_method
from cgankd.stage_options.ladder import RUNGS, check_rung_owned
from cgankd.stage_options.names import check_plain_name
from cgankd.stage_options.nets import check_net_spec
from cgankd.stage_options.quality import checked_quality_options
from cgankd.stage_options.recipe import checked_recipe


def _seeds(seeds: Any, where: str) -> None:
    """Seeds become path parts (seed<k>) and pick fake chains by position: integers >= 0, once."""
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise CgankdInputError(f"{where}[{i}]: a seed must be an integer >= 0, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise CgankdInputError(f"{where}: seeds must be distinct, got {list(seeds)}")


def _students(config: Mapping[str, Any], task: str | None) -> None:
    students = config["students"]
    for name, spec in students["nets"].items():
        check_plain_name(name, f"students.nets.{name}")
        check_net_spec(spec, f"students.nets.{name}")
    for i, method in enumerate(students["methods"]):
        check_method(method, f"students.methods[{i}]", task)
    _seeds(students["seeds"], "students.seeds")
    checked_recipe(students["recipe"], "students.recipe")
    families = students.get("recipes") or {}
    for family, overrides in families.items():
        # each family's overrides are checked as the recipe they make, naming the family
        checked_recipe({**students["recipe"], **(overrides or {})}, f"students.recipes.{family}")
    for name, spec in students["nets"].items():
        for family, overrides in (spec.get("recipes") or {}).items():
            checked_recipe({**students["recipe"], **(families.get(family) or {}),
                            **(overrides or {})}, f"students.nets.{name}.recipes.{family}")
    check_kd_section(config["kd"])


def _fakes(config: Mapping[str, Any], task: str | None, classes: int | None) -> None:
    fake = config["fake"]
    for i, method in enumerate(fake["kd_methods"]):
        check_method(method, f"fake.kd_methods[{i}]", task)
    check_rung_owned(config)
    gan = checked_gan_options(config["gan"]["options"], task)
    check_gan_resolution(config["data"]["resolution"], gan)
    # as the fit_dre rule gets them: with the sampler's window unless dre.options.fit sets one
    checked_dre_options(fit_dre_options(config))
    subsample = checked_subsample_options(config["subsample"]["options"])
    filter_opts = checked_filter_options(config["filter"]["options"])
    rho = _select_rho(config, filter_opts) or _filter_rho(config, filter_opts)
    check_pool_supplies(fake["count"], subsample, task, classes, filter_opts, rho)
    quality = config["quality"]
    if quality["enabled"]:
        check_net_spec(quality, "quality")
        checked_recipe(quality["recipe"], "quality.recipe")
        checked_quality_options(quality["options"])
        checked_extractor_options(quality["extractor"])


def _filter_rho(config: Mapping[str, Any],
                filter_opts: Mapping[str, Any]) -> tuple[float, str] | None:
    """filter.options.rho, with its key, when some rung the run makes filters the pool (the
    final rung, the ladder's, or the quality stage's, which measures every rung): a filter at
    rho keeps ~rho of the pool, so a pool the count fits unfiltered can still run short hours
    into the run, after the GAN and the density ratios. None when nothing filters."""
    if filter_opts["mode"] == "none":
        return None
    fake = config["fake"]
    makes_filtered = (RUNGS[fake["final"]]["filter"] or fake.get("ladder")
                      or (config.get("quality") or {}).get("enabled"))
    return (float(filter_opts["rho"]), "filter.options.rho") if makes_filtered else None


def _select_rho(config: Mapping[str, Any],
                filter_opts: Mapping[str, Any]) -> tuple[float, str] | None:
    """filter.select_rho checked against the rest of the config; the grid's smallest rho,
    with its key, for the pool-size check (None when off: the pool check then counts no rho,
    as before selection existed)."""
    where = "filter.select_rho"
    select = checked_select_rho(config["filter"].get("select_rho"), where)
    if select is None:
        return None
    final = config["fake"]["final"]
    if not RUNGS[final]["filter"]:
        raise CgankdInputError(f"{where}: fake.final {final!r} does not filter, so there is "
                               f"no rho to choose; set fake.final to a filtering rung or "
                               f"filter.select_rho to null")
    if filter_opts["mode"] == "none":
        raise CgankdInputError(f"{where}: filter.options.mode none filters nothing, so there "
                               f"is no rho to choose")
    students = config["students"]
    if not students["nets"]:
        raise CgankdInputError(f"{where}: trains the first of students.nets, which is empty")
    checked_recipe({**students["recipe"], **(students.get("recipes") or {}).get("fakes", {}),
                    **select["recipe"]}, f"{where}.recipe")
    return select["grid"][0], f"{where}.grid"


def _teacher_weights(weights: Any, section: str) -> None:
    """A given teacher's file must exist when the run is planned (the job checks its content)."""
    if weights is None:
        return
    if not isinstance(weights, str) or not weights:
        raise CgankdInputError(f"{section}.weights: must be a file path or null, got "
                               f"{weights!r}")
    if not Path(weights).is_file():
        raise CgankdInputError(f"{section}.weights: file not found: {weights}")


def check_config(config: Mapping[str, Any]) -> None:
    """Raise CgankdInputError (one line, naming the config path) for the first problem."""
    check_plain_name(config["experiment"], "experiment")
    task, classes = check_data(config["data"])
    for section in ("teacher", "kd_teacher"):
        if config.get(section) is not None:
            check_net_spec(config[section], section)
            checked_recipe(config[section].get("recipe") or {}, f"{section}.recipe")
            _teacher_weights(config[section].get("weights"), section)
    _students(config, task)
    if config["fake"]["enabled"]:
        _fakes(config, task, classes)


def fill_kd_teacher(config: dict[str, Any]) -> None:
    """Give a separate kd_teacher section its net defaults, in place: the schema fills no
    defaults under a section that may be null (rules/common.smk and cgankd estimate)."""
    if config.get("kd_teacher"):
        config["kd_teacher"] = {"kwargs": {}, "weights": None, "seed": 0, "recipe": {},
                                **config["kd_teacher"]}


def with_schema_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with the schema's defaults filled in, as Snakemake's ``validate``
    fills them: missing keys take their default, then nested objects are filled the same way."""
    filled = copy.deepcopy(dict(config))
    for key, spec in schema.get("properties", {}).items():
        if key not in filled and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
        if isinstance(filled.get(key), Mapping) and "properties" in spec:
            filled[key] = with_schema_defaults(filled[key], spec)
    return filled


def config_error(config: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """The first problem of a config as written (the schema's, then check_config's), as one
    line, or None: for callers that plan runs outside Snakemake (cgankd.study)."""
    problem = config_problem(config, schema)
    if problem:
        return problem
    try:
        check_config(with_schema_defaults(config, schema))
    except CgankdInputError as error:
        return str(error)
    return None
