"""Published numbers (docs/methods.md, "Published numbers"), kept with their sources in one data
file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Published:
    benchmark: str
    strategy: str
    acc: float
    bwt: float | None
    approximate: bool
    source: str


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
        )
        for entry in data["result"]
    ]
    return results, data["sources"]


def published_cell(entries: list[Published], metric: str, refs: dict[str, int]) -> str:
    """Published values of one metric for one row, e.g. `74.51 [3]; 74.68 [3]`."""
    parts = []
    for entry in entries:
        value = getattr(entry, metric)
        if value is not None:
            parts.append(f"{'~' if entry.approximate else ''}{value:.2f} [{refs[entry.source]}]")
    return "; ".join(parts)
