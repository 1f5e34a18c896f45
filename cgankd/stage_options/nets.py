"""Net specs of the config (``teacher``, ``students.nets.<name>``, ``quality``): the net's
registry name and its ``kwargs``, checked without torch against ``names.NET_OPTIONS``."""

from collections.abc import Mapping
from typing import Any

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options
from cgankd.stage_options.names import NET_OPTIONS, check_known


def check_net_spec(spec: Mapping[str, Any], where: str) -> None:
    """``spec['net']`` is a registered net and ``spec['kwargs']`` holds only its options."""
    net = check_known(spec.get("net"), NET_OPTIONS, "net", f"{where}.net")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise CgankdInputError(f"{where}.kwargs: must be a mapping of net options, got "
                               f"{kwargs!r}")
    keys = NET_OPTIONS[net]
    if kwargs and not keys:
        raise CgankdInputError(f"{where}.kwargs: net {net!r} takes no options; got "
                               f"{', '.join(sorted(kwargs))}")
    merge_options(dict.fromkeys(keys), kwargs, f"{where}.kwargs")
