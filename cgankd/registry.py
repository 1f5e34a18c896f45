"""Name -> factory registries for datasets, nets, KD losses and the like.

A config selects an entry by its key; an unknown key fails with the list of known ones.
"""

from collections.abc import Callable, Iterator
from typing import Any

from cgankd.errors import CgankdInputError


class Registry:
    """A named mapping from string keys to callables, filled by the ``register`` decorator."""

    def __init__(self, kind: str):
        self.kind = kind  # what the entries are ("dataset", "net", ...), used in error messages
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise CgankdInputError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
