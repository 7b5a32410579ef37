"""Name -> object registries filled from Python entry points and in-process registration.

An entry point that fails to import does not break the registry: it is remembered with its error,
listed by `clbench list`, and reported when someone asks for it by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from clbench.errors import ConfigError

T = TypeVar("T")


def docstring_summary(obj: object) -> str:
    """The first paragraph of `obj`'s docstring on one line (a summary never stops mid-sentence
    where the docstring wraps)."""
    paragraph = (inspect.getdoc(obj) or "").split("\n\n", 1)[0]
    return " ".join(paragraph.split())


class Registry(Generic[T]):
    """Entries of one kind (`strategy`, `benchmark`), loaded lazily from entry-point `group`.

    `adapt(name, obj)` validates a registered object and turns it into the entry type; it raises
    `ConfigError` with a readable message for objects of the wrong shape.
    """

    def __init__(self, kind: str, group: str, adapt: Callable[[str, object], T]) -> None:
        self.kind = kind
        self.group = group
        self._adapt = adapt
        self._entries: dict[str, T] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        seen: dict[str, str] = {}
        for point in entry_points(group=self.group):
            if point.name in seen and seen[point.name] != point.value:
                self._entries.pop(point.name, None)
                self._broken[point.name] = (
                    f"registered twice, by {seen[point.name]} and {point.value}"
                )
                continue
            seen[point.name] = point.value
            try:
                self._entries[point.name] = self._adapt(point.name, point.load())
            except Exception as err:  # an outside package may fail in any way; keep the rest usable
                self._broken[point.name] = f"{point.value}: {type(err).__name__}: {err}"

    def register(self, name: str, obj: object) -> T:
        """Register `obj` in-process under `name` (unique)."""
        self._load_entry_points()
        if name in self._entries or name in self._broken:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        entry = self._adapt(name, obj)
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name in self._broken:
            raise ConfigError(f"{self.kind} {name!r} could not be loaded: {self._broken[name]}")
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} {name!r}; valid {self.kind} names: {valid}")
        return self._entries[name]

    def items(self) -> list[tuple[str, T]]:
        self._load_entry_points()
        return sorted(self._entries.items())

    def broken(self) -> dict[str, str]:
        self._load_entry_points()
        return dict(self._broken)
