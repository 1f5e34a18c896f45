"""Config files that extend another: a ``base:`` key names the file a config builds on.

Experiment files that differ only in a few values (RC-49 R-5/R-15/R-25, CIFAR-10 10k/20k/50k)
share one base file and state only what differs. ``base:`` is a path relative to the directory
of the file that names it (absolute paths allowed); the base is loaded first (it may have a
``base:`` of its own) and the file's keys are deep-merged over it. The merge is Snakemake's own
``--configfile`` merge, so a file means the same whichever way it is read: mappings merge key
by key, lists and scalars are replaced whole. Torch- and Snakemake-free: the workflow
(rules/common.smk) and the study runner both read experiment files through here.
"""

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cgankd.errors import CgankdInputError

BASE_KEY = "base"
# Sections every experiment sets, itself or through its base: a config without one of them is
# almost always a few-key overlay given to --configfile without a base, which Snakemake runs on
# the schema's defaults (not config/config.yaml's) for everything it leaves out.
CORE_SECTIONS = ("data", "teacher", "students")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``over``'s keys over ``base``'s, mappings merged key by key (recursively),
    anything else (lists, scalars, None) from ``over`` replacing ``base``'s value whole. Neither
    argument is modified; the result shares nothing with them. (Study points are merged the
    same way: cgankd/study/plan.py uses this function.)"""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_mapping(path: Path, named_by: str | None) -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is {}); one line naming the file if not."""
    where = f"{named_by}: {BASE_KEY}: {path}" if named_by else str(path)
    try:
        text = path.read_text()
    except OSError as err:
        reason = "no such file" if isinstance(err, FileNotFoundError) else err.strerror or err
        raise CgankdInputError(f"{where}: cannot read the config file ({reason})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CgankdInputError(f"{where}: not valid YAML ({err})") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise CgankdInputError(f"{where}: the config file must hold a mapping of keys, got "
                               f"{type(raw).__name__}")
    return dict(raw)


def _resolve(path: Path, chain: list[Path], named_by: str | None) -> dict[str, Any]:
    raw = _read_mapping(path, named_by)
    if BASE_KEY not in raw:
        return raw
    target = raw.pop(BASE_KEY)
    if not isinstance(target, str) or not target.strip():
        raise CgankdInputError(f"{path}: {BASE_KEY}: must be the path of a config file (a "
                               f"string), got {target!r}")
    base_path = (path.parent / target).resolve()  # an absolute target stays as it is
    if base_path in chain:
        cycle = " -> ".join(str(p) for p in [*chain[chain.index(base_path):], base_path])
        raise CgankdInputError(f"{path}: {BASE_KEY}: {target} makes a cycle ({cycle})")
    return deep_merge(_resolve(base_path, [*chain, base_path], str(path)), raw)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The config in ``path`` with its chain of ``base:`` files merged in; no ``base`` key left.

    Every error (a missing or unreadable file, bad YAML, a file that is not a mapping, a
    ``base:`` that is not a string, a cycle) is one CgankdInputError line naming the file.
    """
    path = Path(path)
    return _resolve(path, [path.resolve()], None)


def has_base(path: str | Path) -> bool:
    """Whether the config file names a ``base:`` (an unreadable file: False, so the caller's
    own reading reports it)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(raw, Mapping) and BASE_KEY in raw


def configfiles_config(paths: Sequence[str | Path], overrides: Mapping[str, Any]
                       ) -> dict[str, Any] | None:
    """The config Snakemake's ``--configfile paths --config overrides`` means once bases are
    resolved: each file resolved, merged in the order given, ``overrides`` on top. None when no
    file names a base (Snakemake's own config is then already right)."""
    if not any(has_base(p) for p in paths):
        return None
    config: dict[str, Any] = {}
    for path in paths:
        config = deep_merge(config, load_config_file(path))
    return deep_merge(config, overrides)


def partial_config_warning(paths: Sequence[str | Path], config: Mapping[str, Any]) -> str | None:
    """One warning line when the config the ``--configfile`` ``paths`` make lacks a core
    section (so the schema's defaults will fill it), naming the files and the sections; None
    when every core section is set or no file was given."""
    missing = [section for section in CORE_SECTIONS if section not in config]
    if not paths or not missing:
        return None
    files = ", ".join(str(p) for p in paths)
    return (f"cgankd: warning: --configfile {files} sets no {', '.join(missing)}: the schema's "
            f"defaults fill {'it' if len(missing) == 1 else 'them'}, not config/config.yaml's; "
            f"to change a few keys of another config, start the file with `base: <that file>`")
