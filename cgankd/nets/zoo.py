"""The net registry and ``build_net``, the one way the pipeline makes a teacher or a student.

Each registered factory takes ``(num_outputs, in_channels)`` positionally; its keyword-only
parameters with defaults are the options a config may set for that net (``width`` for ``cnn``,
``width_mult`` for ``mobilenetv2``). Anything else is rejected by name.
"""

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.nets.external import build_external
from cgankd.options import merge_options
from cgankd.registry import Registry
from cgankd.stage_options.nets import is_import_path

NETS = Registry("net")


def net_names() -> list[str]:
    return NETS.names()


def register_variant(name: str, make: Callable[..., nn.Module], *config: Any) -> None:
    """Register ``name`` as ``make(*config, num_outputs, in_channels)``: a fixed configuration of
    a family (one depth of ResNet, one VGG), so it takes no options."""
    def build(num_outputs: int, in_channels: int) -> nn.Module:
        return make(*config, num_outputs, in_channels)

    NETS.register(name)(build)


def build_net(name: str, num_outputs: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """The net ``name`` with a head of ``num_outputs`` (classes, or 1 for regression).

    ``name`` is a registry key or an import path ``"package.module:factory"`` (the user's own
    net, ``cgankd.nets.external``), called with the same arguments.
    """
    require_positive_int(name, "num_outputs", num_outputs)
    require_positive_int(name, "in_channels", in_channels)
    if is_import_path(name):
        return build_external(name, num_outputs, in_channels, **options)
    factory = NETS.get(name)
    defaults = _options_of(factory)
    if options and not defaults:
        raise CgankdInputError(f"net {name!r} takes no options; got {', '.join(sorted(options))}")
    return factory(num_outputs, in_channels, **merge_options(defaults, options, f"net.{name}"))


def require_positive_int(net: str, what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CgankdInputError(f"net {net!r}: {what} must be a positive integer, got {value!r}")


def _options_of(factory: Callable[..., nn.Module]) -> dict[str, Any]:
    return {param.name: param.default
            for param in inspect.signature(factory).parameters.values()
            if param.kind is inspect.Parameter.KEYWORD_ONLY}
