"""Strategy registration: the registry, the factory's shape and what it returns.

A strategy is a factory `def f(model: nn.Module, params: P) -> StrategyBuild` where `P` is a
dataclass of typed parameters (defaults from the method's paper). What its plugins and parameters
may tell the harness is the contract of `clbench.strategies.contract`. Strategies register through
the `clbench.strategies` entry-point group (the zoo in `baselines/` does exactly this) or
in-process with `register_strategy`; their per-benchmark presets through `clbench.presets`
(`clbench.presets`).

How reports present a strategy is declared on its factory with `clbench.strategy_info.describe`:
`@describe("GPM", family="projection")` (role `method` by default; `bound` for a limit such as
fine-tuning, `oracle` for one that sees what a continual learner may not, such as joint training).
Registration reads it into `Strategy.info`, and every result file stores it. An undecorated factory
is shown under its registered name, in the `plugins` family, as a method.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from clbench.errors import ConfigError
from clbench.params import check_parseable, field_types
from clbench.registry import Registry, docstring_summary
from clbench.strategies.contract import check_order
from clbench.strategy_info import StrategyInfo, declared_info

SIGNATURE_HINT = "def factory(model: nn.Module, params: SomeDataclass) -> StrategyBuild"


@dataclass
class StrategyBuild:
    """What a strategy factory returns.

    plugins: Avalanche plugins (`StrategyPlugin`s where they tell the harness more); they run in
        this order, before the harness's own plugins; `StrategyPlugin.follows` is checked.
    model: a transformed model that replaces the one passed in (None: keep it).
    cumulative: train (and validate) on the union of all tasks seen so far instead of the current
        task alone, e.g. joint training.
    """

    plugins: list[Any] = field(default_factory=list)
    model: nn.Module | None = None
    cumulative: bool = False


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its factory, its parameter dataclasses, a one-line summary and how
    reports present it (`info`).

    `params_types` holds one dataclass, or several when the factory's parameter is annotated with
    a union of dataclasses (GPCNS: one per base method); then `selector` names the field whose
    one-value `Literal` type tells them apart, and the first is the default."""

    name: str
    factory: Callable[[nn.Module, Any], StrategyBuild]
    params_types: tuple[type, ...]
    summary: str
    info: StrategyInfo
    selector: str | None = None

    @property
    def params_type(self) -> type:
        """The default parameter class (the only one, or the first of a union)."""
        return self.params_types[0]

    def choices(self) -> dict[str, type]:
        """{selector value: parameter class} of a union; empty for one class."""
        if self.selector is None:
            return {}
        return {selector_value(t, self.selector): t for t in self.params_types}

    @property
    def module(self) -> str:
        """The module that defines the factory: its code is part of a run's provenance
        (`clbench.provenance.code_provenance`)."""
        return self.factory.__module__

    def params_type_for(self, values: Mapping[str, Any]) -> type:
        """The parameter class that `values` (field values as typed or stored) select."""
        if self.selector is None or self.selector not in values:
            return self.params_type
        chosen = str(values[self.selector])
        choices = self.choices()
        if chosen not in choices:
            raise ConfigError(
                f"{self.name}.{self.selector}: {chosen!r} is not one of "
                f"{', '.join(repr(c) for c in choices)}"
            )
        return choices[chosen]

    def build(self, model: nn.Module, params: Any) -> StrategyBuild:
        built = self.factory(model, params)
        if not isinstance(built, StrategyBuild):
            raise ConfigError(
                f"strategy {self.name!r} returned {type(built).__name__}, expected StrategyBuild"
            )
        check_order(built.plugins, self.name)
        return built


def strategy_from_factory(name: str, factory: object) -> Strategy:
    """Validate a factory's signature and read its parameter dataclass from the annotation and
    its presentation from `describe`."""
    where = f"strategy {name!r} ({getattr(factory, '__module__', '?')}."
    where += f"{getattr(factory, '__qualname__', repr(factory))})"
    if not callable(factory):
        raise ConfigError(f"{where} is not callable; expected {SIGNATURE_HINT}")
    parameters = list(inspect.signature(factory).parameters.values())
    if len(parameters) != 2:
        got = ", ".join(p.name for p in parameters)
        raise ConfigError(f"{where} takes ({got}); expected {SIGNATURE_HINT}")
    try:
        hints = typing.get_type_hints(factory)
    except Exception as err:
        raise ConfigError(f"{where}: its annotations cannot be resolved ({err})") from None
    hint = hints.get(parameters[1].name)
    members = typing.get_args(hint) if typing.get_origin(hint) in UNIONS else (hint,)
    if not all(isinstance(t, type) and dataclasses.is_dataclass(t) for t in members):
        raise ConfigError(
            f"{where}: parameter {parameters[1].name!r} must be annotated with a dataclass (or a "
            f"union of dataclasses); expected {SIGNATURE_HINT}"
        )
    for params_type in members:
        check_parseable(params_type, where)
    selector = union_selector(members, where) if len(members) > 1 else None
    summary = docstring_summary(factory)
    info = declared_info(name, factory)
    return Strategy(name, factory, tuple(members), summary, info, selector)


UNIONS = (typing.Union, types.UnionType)


def selector_value(params_type: type, selector: str) -> str:
    """The one value a class of a union allows in its selector field."""
    return str(typing.get_args(field_types(params_type)[selector])[0])


def union_selector(members: Sequence[type], where: str) -> str:
    """The field every class of a union has with a different one-value `Literal` type."""
    for name in field_types(members[0]):
        kinds = [field_types(t).get(name) for t in members]
        single = [
            k for k in kinds if typing.get_origin(k) is Literal and len(typing.get_args(k)) == 1
        ]
        values = {typing.get_args(k)[0] for k in single}
        if len(single) == len(members) and len(values) == len(members):
            return name
    raise ConfigError(
        f"{where}: a union of parameter classes needs a field that tells them apart, of type "
        "Literal['one value'] in each, a different value in each"
    )


STRATEGIES: Registry[Strategy] = Registry("strategy", "clbench.strategies", strategy_from_factory)


def register_strategy(name: str, factory: Callable[[nn.Module, Any], StrategyBuild]) -> Strategy:
    """Register a strategy in-process (a script or notebook); entry points are the packaged way."""
    return STRATEGIES.register(name, factory)
