"""Published numbers (docs/methods.md, "Published numbers"), kept with their sources and setups in
one data file. A published number stands plainly beside a measured row only where the setups
match: an entry with a `setup` differs from clbench's run of the method unless the row's
configuration has every setting of its `when`; otherwise the cell marks it (†) and the source
note states the setup."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

MARK = "†"  # a published number from another setup than the row's


@dataclass(frozen=True)
class Published:
    benchmark: str
    strategy: str
    acc: float
    bwt: float | None
    approximate: bool
    source: str
    setup: str | None = None
    when: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether a run of configuration `config` (flat `section.field` keys) has the setup the
        number was published for."""
        if self.setup is None:
            return True
        return bool(self.when) and all(config.get(k) == v for k, v in self.when.items())


def load_published() -> tuple[list[Published], dict[str, str]]:
    """Every published result, and the sources they cite (key -> reference)."""
    text = resources.files("clbench").joinpath("report/published.toml").read_text()
    data = tomllib.loads(text)
    results = [
        Published(
            benchmark=entry["benchmark"],
            strategy=entry["strategy"],
            acc=entry["acc"],
            bwt=entry.get("bwt"),
            approximate=entry.get("approximate", False),
            source=entry["source"],
            setup=entry.get("setup"),
            when=entry.get("when", {}),
        )
        for entry in data["result"]
    ]
    return results, data["sources"]


def reference_key(entry: Published) -> tuple[str, str | None]:
    """What a footnote number stands for: a source, with the setup of its number if any."""
    return entry.source, entry.setup


def published_cell(
    entries: list[Published],
    metric: str,
    refs: dict[tuple[str, str | None], int],
    config: Mapping[str, Any],
) -> str:
    """Published values of one metric for one row, e.g. `74.51 [3]; 73.76 [4]†`."""
    parts = []
    for entry in entries:
        value = getattr(entry, metric)
        if value is not None:
            mark = "" if entry.matches(config) else MARK
            approx = "~" if entry.approximate else ""
            parts.append(f"{approx}{value:.2f} [{refs[reference_key(entry)]}]{mark}")
    return "; ".join(parts)


def footnote(source: str, setup: str | None) -> str:
    """A footnote's text: the source, and the setup its numbers come from where it has one."""
    if setup is None:
        return source
    return f"{source}; setup: {setup} ({MARK}: the row ran another setup)"
