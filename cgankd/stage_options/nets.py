"""Net specs of the config (``teacher``, ``students.nets.<name>``, ``quality``): the net's
registry name and its ``kwargs``, checked without torch against ``names.NET_OPTIONS``.

A net may also be the user's own, named by import path ``"package.module:factory"``. Its
module is found on ``sys.path`` without importing it (importing would pull in torch at plan
time); the job imports it and checks the net on a sample batch (``cgankd.nets.contract``).
"""

import hashlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.stage_options.names import NET_OPTIONS, check_known

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}$")


def is_import_path(net: Any) -> bool:
    """True for a net named ``"module.path:factory"`` rather than by registry key."""
    return isinstance(net, str) and ":" in net


def check_net_spec(spec: Mapping[str, Any], where: str) -> None:
    """``spec['net']`` is a registered net (with only its options in ``spec['kwargs']``) or an
    import path whose module can be found."""
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise CgankdInputError(f"{where}.kwargs: must be a mapping of net options, got "
                               f"{kwargs!r}")
    if is_import_path(spec.get("net")):
        module_file(spec["net"], f"{where}.net")  # the factory's own keywords: checked at run
        return
    net = check_known(spec.get("net"), NET_OPTIONS, "net", f"{where}.net")
    keys = NET_OPTIONS[net]
    if kwargs and not keys:
        raise CgankdInputError(f"{where}.kwargs: net {net!r} takes no options; got "
                               f"{', '.join(sorted(kwargs))}")
    merge_options(dict.fromkeys(keys), kwargs, f"{where}.kwargs")


def net_spec(net_cfg: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """(net name, kwargs) of a ``{net, kwargs}`` section. ``source_sha256``, which the workflow
    adds for a net named by import path so that editing its module reruns it, is allowed."""
    unknown = sorted(set(net_cfg) - {"net", "kwargs", "source_sha256"})
    if unknown or "net" not in net_cfg:
        raise CgankdInputError(f"{where}: expects keys 'net' and optional 'kwargs', got "
                               f"{sorted(net_cfg)}")
    return net_cfg["net"], dict(net_cfg.get("kwargs") or {})


def split_import_path(net: str, where: str) -> tuple[str, str]:
    """(module, attribute) of ``"module.path:factory"``; one line naming ``where`` if malformed."""
    if not IMPORT_PATH.match(net):
        raise CgankdInputError(f"{where}: {net!r} is neither a registered net nor an import "
                               f"path 'package.module:factory'")
    module, attribute = net.split(":")
    return module, attribute


def module_file(net: str, where: str) -> Path:
    """The source file of the import path's module, found on ``sys.path`` without running it.

    Only a package's ``__init__`` may run, and only when the plain search fails (a namespace
    package, a zip): ``importlib.util.find_spec`` imports a dotted name's parents.
    """
    module, _ = split_import_path(net, where)
    parts = module.split(".")
    for entry in sys.path:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise CgankdInputError(f"{where}: cannot find module {module!r} of net {net!r}; it must "
                               f"be importable where the jobs run (an installed package, or "
                               f"its folder on PYTHONPATH)")
    return Path(found.origin)


def net_source_sha256(net: str, where: str) -> str | None:
    """sha256 of an import-path net's module file (a rule param: editing it reruns the nets
    built from it); None for a registered net, whose code the stage hash covers."""
    if not is_import_path(net):
        return None
    return hashlib.sha256(module_file(net, where).read_bytes()).hexdigest()
