"""The score a study maximises, the same for every strategy (`clbench tune --objective`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clbench.errors import ConfigError

_CONSTRAINED = re.compile(r"acc:forgetting<=([0-9.eE+-]+)")


@dataclass(frozen=True)
class Objective:
    """`acc`: the final average accuracy on the validation split (ACC, percent). With
    `max_forgetting` F (`acc:forgetting<=F`): ACC where the average forgetting is at most F
    points, and minus the forgetting otherwise, so every configuration within the constraint
    ranks above every one outside it, and those outside rank by how little they forget."""

    max_forgetting: float | None = None

    @classmethod
    def parse(cls, text: str) -> Objective:
        if text == "acc":
            return cls()
        match = _CONSTRAINED.fullmatch(text)
        if match:
            try:
                bound = float(match.group(1))
            except ValueError:
                bound = math.nan
            if math.isfinite(bound) and bound >= 0:
                return cls(bound)
        raise ConfigError(
            f"--objective {text!r} is not valid; use acc or acc:forgetting<=F with F >= 0 points"
        )

    def __str__(self) -> str:
        return "acc" if self.max_forgetting is None else f"acc:forgetting<={self.max_forgetting:g}"

    def score(self, metrics: Mapping[str, float]) -> float:
        """The objective of one run's metrics (`clbench.metrics.summarize`)."""
        if self.max_forgetting is None or metrics["forgetting"] <= self.max_forgetting:
            return float(metrics["acc"])
        return -float(metrics["forgetting"])


def shown_score(value: float | None, missing: str = "-") -> str:
    """A study's score as tables and lines show it; `missing` where it has none."""
    return missing if value is None else f"{value:.2f}"
