"""Strategy plugin API.

A strategy is a factory `def f(model: nn.Module, params: P) -> StrategyBuild` where `P` is a
dataclass of typed parameters (defaults from the method's paper). The factory returns Avalanche
`SupervisedPlugin`s that the runner attaches to a `SupervisedTemplate`, and optionally a transformed
model. Strategies register through the `clbench.strategies` entry-point group (the zoo in
`baselines/` does exactly this) or in-process with `register_strategy`.

How reports present a strategy is declared on its factory with `clbench.strategy_info.describe`:
`@describe("GPM", family="projection")` (role `method` by default; `bound` for a limit such as
fine-tuning, `oracle` for one that sees what a continual learner may not, such as joint training).
Registration reads it into `Strategy.info`, and every result file stores it. An undecorated factory
is shown under its registered name, in the `plugins` family, as a method.

Two optional plugin methods feed the result file: `kept_bytes() -> int`, the bytes the plugin keeps
between tasks (otherwise its attributes are walked, see `clbench/memory.py`), and
`task_report() -> dict`, extra per-task fields (GPM's basis sizes, NESS's null-space ranks).
Two more shape training: `count_trainable(model) -> int`, the count the result reports when the
tensors that train stand for fewer free parameters (NESS's direct route trains W in an r-dimensional
subspace: out x r each), and `decays_itself(weight_decay) -> list[Tensor]`, called when the
optimizer is built, naming tensors the plugin applies the protocol's weight decay to itself (the
optimizer then gives them none).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.errors import ConfigError
from clbench.params import check_parseable
from clbench.registry import Registry, docstring_summary
from clbench.strategy_info import StrategyInfo, declared_info

SIGNATURE_HINT = "def factory(model: nn.Module, params: SomeDataclass) -> StrategyBuild"


@dataclass
class StrategyBuild:
    """What a strategy factory returns.

    plugins: Avalanche plugins; they run in this order, before the harness's own plugins.
    model: a transformed model that replaces the one passed in (None: keep it).
    cumulative: train (and validate) on the union of all tasks seen so far instead of the current
        task alone, e.g. joint training.
    """

    plugins: list[SupervisedPlugin] = field(default_factory=list)
    model: nn.Module | None = None
    cumulative: bool = False


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its factory, its parameter dataclass, a one-line summary and how
    reports present it (`info`)."""

    name: str
    factory: Callable[[nn.Module, Any], StrategyBuild]
    params_type: type
    summary: str
    info: StrategyInfo

    def build(self, model: nn.Module, params: Any) -> StrategyBuild:
        built = self.factory(model, params)
        if not isinstance(built, StrategyBuild):
            raise ConfigError(
                f"strategy {self.name!r} returned {type(built).__name__}, expected StrategyBuild"
            )
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
    params_type = hints.get(parameters[1].name)
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)):
        raise ConfigError(
            f"{where}: parameter {parameters[1].name!r} must be annotated with a dataclass; "
            f"expected {SIGNATURE_HINT}"
        )
    check_parseable(params_type, where)
    summary = docstring_summary(factory)
    info = declared_info(name, factory)
    return Strategy(name, factory, params_type, summary, info)


STRATEGIES: Registry[Strategy] = Registry("strategy", "clbench.strategies", strategy_from_factory)


def register_strategy(name: str, factory: Callable[[nn.Module, Any], StrategyBuild]) -> Strategy:
    """Register a strategy in-process (a script or notebook); entry points are the packaged way."""
    return STRATEGIES.register(name, factory)
