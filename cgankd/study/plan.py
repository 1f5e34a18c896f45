"""A study file read into points: one merged, schema-checked config per (factor, level).

The study file's keys::

    name: gain                 # optional; the file's stem by default
    description: ...           # optional
    overrides: {...}           # a config fragment deep-merged into every point (and the base)
    factors:
      fake_count: {key: fake.count, levels: [500, 1000, 2000]}
      kd_on_fakes: {key: fake.kd_methods, levels: {none: [], kd: [kd]}}
      budget:                  # no key: each level sets several key paths
        levels:
          steps: {students.recipe.budget: steps}
          epochs: {students.recipe.budget: epochs, students.recipe.epochs: 480}

Point names are results folder names: ``<experiment>-<study>-base`` for the base (the
experiment with the overrides) and ``<experiment>-<study>-<factor>-<level>`` for the others,
so the same study file runs on several experiment configs side by side.
"""

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cgankd.config_files import deep_merge  # one merge for config files and study points
from cgankd.stage_options.plan import config_error
from cgankd.errors import CgankdInputError

STUDY_KEYS = ("name", "description", "overrides", "factors")
FACTOR_KEYS = ("key", "levels", "description")
NAME = re.compile(r"^[A-Za-z0-9_]+$")  # study and factor names: "-" separates name parts
LABEL = re.compile(r"^[A-Za-z0-9_.]+$")  # level labels may hold a decimal point (rho 0.9)
BASE = "base"  # the factor and level names of the base point in the CSV


@dataclass(frozen=True)
class Level:
    label: str
    settings: dict[str, Any]  # dotted config key path -> value


@dataclass(frozen=True)
class Factor:
    name: str
    key: str | None  # None: each level sets its own key paths
    levels: tuple[Level, ...]
    description: str = ""


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    overrides: dict[str, Any]
    factors: tuple[Factor, ...]
    description: str = ""


@dataclass(frozen=True)
class Point:
    factor: str  # BASE for the base point
    level: str
    experiment: str  # the results folder name, also the config's `experiment`
    config: dict[str, Any]
    key: str = ""  # the factor's key path, for figure titles ("" for several or none)


def _check_keys(mapping: Any, known: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping):
        raise CgankdInputError(f"{where}: must be a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(map(str, mapping)) - set(known))
    if unknown:
        raise CgankdInputError(f"{where}.{unknown[0]}: unknown key; known keys here: "
                               f"{', '.join(known)}")
    return mapping


def level_label(value: Any, where: str) -> str:
    """A plain name for a level given as a bare value: 500, 0.9, scratch, [] -> none, [kd]."""
    if value is None or value == []:
        label = "none"
    elif isinstance(value, bool):
        label = str(value).lower()
    elif isinstance(value, (int, float, str)):
        label = str(value)
    elif isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
        label = "_".join(map(str, value))
    else:
        label = ""
    if not LABEL.match(label):
        raise CgankdInputError(f"{where}: level {value!r} has no plain name; give the levels as "
                               f"a mapping {{label: value}} with labels of letters, digits, _ .")
    return label


def _levels(spec: Mapping[str, Any], where: str) -> tuple[Level, ...]:
    key, levels = spec.get("key"), spec.get("levels")
    if key is not None and (not isinstance(key, str) or not key):
        raise CgankdInputError(f"{where}.key: a dotted config key path, got {key!r}")
    if isinstance(levels, list) and key is not None:
        pairs = [(level_label(v, f"{where}.levels"), v) for v in levels]
    elif isinstance(levels, Mapping):
        pairs = [(str(label), value) for label, value in levels.items()]
    else:
        raise CgankdInputError(f"{where}.levels: a list of values (with key) or a mapping "
                               f"{{label: value}} (or, without key, {{label: {{key.path: "
                               f"value}}}}), got {levels!r}")
    out = []
    for label, value in pairs:
        if not LABEL.match(label):
            raise CgankdInputError(f"{where}.levels.{label}: labels are letters, digits, _ .")
        if key is None:
            if not isinstance(value, Mapping) or not value:
                raise CgankdInputError(f"{where}.levels.{label}: without key, a level is a "
                                       f"mapping {{key.path: value}}, got {value!r}")
            settings = {str(k): v for k, v in value.items()}
        else:
            settings = {key: value}
        out.append(Level(label, settings))
    if not out:
        raise CgankdInputError(f"{where}.levels: no levels")
    labels = [level.label for level in out]
    duplicate = next((x for x in labels if labels.count(x) > 1), None)
    if duplicate:
        raise CgankdInputError(f"{where}.levels: two levels are named {duplicate!r}")
    return tuple(out)


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every error names the file and the key path at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CgankdInputError(f"{path}: cannot read the study file ({err})") from None
    raw = _check_keys(raw if raw is not None else {}, STUDY_KEYS, str(path))
    name = str(raw.get("name", path.stem))
    if not NAME.match(name):
        raise CgankdInputError(f"{path}: name: {name!r} must be letters, digits and _")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise CgankdInputError(f"{path}: overrides: a config fragment (mapping), got "
                               f"{overrides!r}")
    factors_raw = raw.get("factors")
    if not isinstance(factors_raw, Mapping) or not factors_raw:
        raise CgankdInputError(f"{path}: factors: a mapping {{name: {{key, levels}}}} with at "
                               f"least one factor")
    factors = []
    for fname, spec in factors_raw.items():
        where = f"{path}: factors.{fname}"
        if not NAME.match(str(fname)):
            raise CgankdInputError(f"{where}: factor names are letters, digits and _")
        spec = _check_keys(spec, FACTOR_KEYS, where)
        factors.append(Factor(str(fname), spec.get("key"), _levels(spec, where),
                              str(spec.get("description", ""))))
    return Study(name, path, copy.deepcopy(dict(overrides)), tuple(factors),
                 str(raw.get("description", "")))


def set_path(config: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set the dotted key ``path`` in ``config``, creating missing mappings on the way."""
    node = config
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CgankdInputError(f"{where}: {'.'.join(parts[: i + 1])} is not a mapping, so "
                                   f"{path} cannot be set")
    node[parts[-1]] = copy.deepcopy(value)


def experiment_name(config: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    return str(config.get("experiment") or schema["properties"]["experiment"]["default"])


def study_prefix(experiment: str, study: Study) -> str:
    """The shared start of every point's name, and the study's own results folder."""
    return f"{experiment}-{study.name}"


def plan_points(study: Study, experiment_config: Mapping[str, Any],
                schema: Mapping[str, Any]) -> tuple[Point, list[Point]]:
    """The base point and one point per (factor, level), each config checked as the workflow
    checks it when it plans the run (schema, then cgankd.stage_options.check_config)."""
    prefix = study_prefix(experiment_name(experiment_config, schema), study)
    # A YAML alias (the digits configs' `recipe: *digits_recipe`) loads as one shared dict:
    # unshare it, or setting students.recipe.budget would change the teacher's recipe too.
    base_config = deep_merge(json.loads(json.dumps(experiment_config)), study.overrides)
    base_config["experiment"] = f"{prefix}-{BASE}"
    problem = config_error(base_config, schema)  # the schema, then the plan-time checks
    if problem:
        raise CgankdInputError(f"{study.path}: overrides: {problem}")
    base = Point(BASE, BASE, base_config["experiment"], base_config)
    points = []
    for factor in study.factors:
        for level in factor.levels:
            where = f"{study.path}: factors.{factor.name}.levels.{level.label}"
            config = copy.deepcopy(base_config)
            for path, value in level.settings.items():
                set_path(config, path, value, where)
            config["experiment"] = f"{prefix}-{factor.name}-{level.label}"
            problem = config_error(config, schema)
            if problem:
                raise CgankdInputError(f"{where}: {problem}")
            points.append(Point(factor.name, level.label, config["experiment"], config,
                                factor.key or ""))
    return base, points
