"""Search spaces: what `clbench tune` may vary for a strategy, declared beside its parameters.

A parameter class declares its space in a `SEARCH_SPACE` class attribute, `{field: Range or
Choice}`, in the module that defines the method (`baselines/ewc.py`); an outside plugin does the
same. The protocol's learning rate is searched for every strategy on one grid, `LR_MULTIPLIER`:
a factor applied to the strategy's own resolved rate (and to its `lr_min`, so the plateau schedule
decays it as often), because methods train at different optimisers and rates (Adam-NSCL's Adam at
1e-3, NESS at a tenth of the benchmark's SGD rate). A strategy fixes its rate instead by declaring
`"protocol.lr": Fixed("why")`. Every trial starts from the run's resolved values (its presets),
so the first trial of a study is the preset configuration itself (`defaults`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_origin

from clbench.errors import ConfigError
from clbench.params import field_types

LR = "protocol.lr"


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high`; `log`: sampled uniformly in log scale; `integer`: whole
    numbers. A tuple-valued field (a threshold per layer) receives one value for every layer."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def check(self, where: str) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(
                f"{where}: range [{self.low}, {self.high}] is empty or inverted; "
                "give finite low < high"
            )
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: a log-scale range needs low > 0, got {self.low}")

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())


@dataclass(frozen=True)
class Choice:
    """One of `values`."""

    values: tuple[Any, ...]

    def check(self, where: str) -> None:
        if not self.values:
            raise ConfigError(f"{where}: a choice needs at least one value")

    def contains(self, value: Any) -> bool:
        return value in self.values


@dataclass(frozen=True)
class Fixed:
    """Not searched, for the reason given (only for `protocol.lr`)."""

    reason: str


Dimension = Range | Choice
LR_MULTIPLIER = Range(0.1, 10.0, log=True)


@dataclass(frozen=True)
class SearchSpace:
    """What a study varies: the strategy's fields and, unless fixed, the lr multiplier."""

    strategy: str
    fields: Mapping[str, Dimension]
    lr: Dimension | Fixed

    def dimensions(self) -> dict[str, Dimension]:
        """Every searched name (`protocol.lr` first) and its dimension."""
        searched = {} if isinstance(self.lr, Fixed) else {LR: self.lr}
        return {**searched, **{f"{self.strategy}.{k}": v for k, v in self.fields.items()}}


def search_space(strategy: str, params_type: type) -> SearchSpace:
    """The space `params_type` declares (`SEARCH_SPACE`), checked: every field exists and every
    range is non-empty."""
    declared: Mapping[str, Any] = getattr(params_type, "SEARCH_SPACE", {})
    types = field_types(params_type)
    lr: Dimension | Fixed = LR_MULTIPLIER
    fields: dict[str, Dimension] = {}
    for name, dimension in declared.items():
        where = f"{params_type.__name__}.SEARCH_SPACE[{name!r}]"
        if name == LR:
            if not isinstance(dimension, Fixed):
                raise ConfigError(f"{where}: the rate is searched on the shared grid or Fixed")
            lr = dimension
            continue
        if name not in types:
            raise ConfigError(f"{where}: no field {name!r}; valid: {', '.join(types)}")
        if not isinstance(dimension, Range | Choice):
            raise ConfigError(f"{where}: {dimension!r} is not a Range or Choice")
        dimension.check(where)
        fields[name] = dimension
    return SearchSpace(strategy, fields, lr)


def field_value(params_type: type, name: str, sampled: Any) -> Any:
    """A sampled number as the value of field `name` (one value for every layer of a tuple)."""
    return (sampled,) if get_origin(field_types(params_type)[name]) is tuple else sampled


def sampled_value(value: Any) -> Any:
    """A field's value as a point of its dimension: a tuple whose values are equal as one number,
    any other tuple as None (not a point of a one-number range)."""
    if isinstance(value, tuple | list):
        return value[0] if value and all(v == value[0] for v in value) else None
    return value
