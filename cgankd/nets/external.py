"""Nets named by import path (``"mypackage.module:factory"``): the user's own teacher, student
or metric net, built by their factory instead of the registry.

The factory is called like a registered one, ``factory(num_outputs, in_channels, **kwargs)``,
and must return a module honouring the zoo's forward contract (checked on a sample batch by
``cgankd.nets.contract`` before a net trains or is imported).
"""

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.stage_options.nets import split_import_path


def import_factory(name: str) -> Callable[..., nn.Module]:
    module_name, attribute = split_import_path(name, "net")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CgankdInputError(f"net {name!r}: cannot import {module_name!r} ({err}); it must "
                               f"be importable where the jobs run (an installed package, or "
                               f"its folder on PYTHONPATH)") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise CgankdInputError(f"net {name!r}: module {module_name!r} has no callable "
                               f"{attribute!r}")
    return factory


def build_external(name: str, num_outputs: int, in_channels: int, **options: Any) -> nn.Module:
    factory = import_factory(name)
    try:
        net = factory(num_outputs, in_channels, **options)
    except TypeError as err:
        # a wrong keyword or arity: the factory's signature is the user's, so say how it is called
        raise CgankdInputError(f"net {name!r}: factory(num_outputs={num_outputs}, "
                               f"in_channels={in_channels}, **{options!r}) failed: {err}"
                               ) from None
    if not isinstance(net, nn.Module):
        raise CgankdInputError(f"net {name!r}: factory returned {type(net).__name__}, not a "
                               f"torch.nn.Module")
    return net
