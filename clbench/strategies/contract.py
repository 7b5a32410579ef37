"""The contract between a strategy and the harness (docs/extending.md).

A strategy is a factory `def f(model: nn.Module, params: P) -> StrategyBuild`, `P` a dataclass of
typed parameters. The plugins it returns are called by Avalanche's training template at its events
(`before_training_exp(strategy)`, `after_backward(strategy)`, ...): a plugin changes gradients in
`after_backward` (under `torch.no_grad()`), steps in `after_update` and updates its memory in
`after_training_exp`. A plugin may be any Avalanche plugin; one that derives from `StrategyPlugin`
also tells the harness, through the hooks below, what it keeps, what it reports, what trains and
what decays, and which of its strategy's plugins it must follow. Every hook has a default, so a
plugin defines only the ones it needs.

The parameter dataclass may define two methods that resolution calls (`clbench.resolution`):
`check_protocol(protocol)`, which raises `ConfigError` for a training protocol the method cannot
run under (the projection family refuses momentum), and `unused_fields()`, the fields the chosen
settings leave unread (protocol cards mark them unused).

This module imports no Avalanche code: listing strategies and their parameters stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn
from torch.utils.data import Dataset

from clbench.errors import ConfigError


class StrategyParams(Protocol):
    """The optional methods of a parameter dataclass (module docstring); a dataclass with neither
    is a valid parameter class too."""

    def check_protocol(self, protocol: Any) -> None: ...

    def unused_fields(self) -> tuple[str, ...]: ...


#: Names of the subspace quantities the zoo reports (`TaskReport.subspaces`); any name works.
KEPT_BASIS_SIZE = "kept basis size"
NULL_SPACE_RANK = "null-space rank"


@dataclass(frozen=True)
class TaskReport:
    """What a plugin reports after each task, stored in the task's record of the result file.

    subspaces: per quantity (`kept basis size`, `null-space rank`, ...), each layer's size after
        the task; reports draw every quantity the same way.
    details: further per-task fields, by name (a name may be used by one plugin of a strategy).
    """

    subspaces: dict[str, dict[str, int]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class StrategyPlugin:
    """Base class of a strategy's own plugins: the hooks the harness reads, with their defaults.

    `follows` and `precedes`: plugin classes of the same strategy that must come before, or
    after, this one in `StrategyBuild.plugins` when both are there (the template calls plugins in
    list order at every event); `check_order` enforces both when a strategy is built.
    """

    follows: ClassVar[tuple[type, ...]] = ()
    precedes: ClassVar[tuple[type, ...]] = ()
    supports_distributed: ClassVar[bool] = False

    @staticmethod
    def task_index(strategy: Any) -> int:
        """The index (from 0) of the task being trained, read from the template's clock; after
        training and during evaluation, the number of tasks trained so far. (The clock is the
        template's last plugin: it counts a task only after every other plugin's
        `after_training_exp`.)"""
        return int(strategy.clock.train_exp_counter)

    def kept(self) -> Iterable[Tensor | Dataset]:
        """What the plugin keeps between tasks; the harness sums its bytes (a tensor's elements
        times their size, a dataset's samples times one sample's size). Default: nothing."""
        return ()

    def task_report(self) -> TaskReport:
        """The plugin's report of the task just trained. Default: empty."""
        return TaskReport()

    def count_trainable(self, model: nn.Module) -> int | None:
        """The number of free parameters trained in this task when the trainable tensors stand
        for fewer (NESS's direct route); None: count the trainable tensors' elements."""
        return None

    def decay_exempt(self) -> list[Tensor]:
        """Trainable tensors to which the optimizer applies no weight decay, because the plugin
        applies the protocol's decay to them itself. Called after every plugin's
        `before_training_exp`, when the optimizer of the task is built."""
        return []


def check_order(plugins: Sequence[object], strategy: str) -> None:
    """Raise `ConfigError` when a plugin comes before one of its `follows` or after one of its
    `precedes` in `plugins`."""
    for position, plugin in enumerate(plugins):
        before, after = plugins[:position], plugins[position + 1 :]
        rules = [("follow", c, after) for c in getattr(plugin, "follows", ())]
        rules += [("precede", c, before) for c in getattr(plugin, "precedes", ())]
        for word, other, wrong_side in rules:
            if any(isinstance(p, other) for p in wrong_side):
                raise ConfigError(
                    f"strategy {strategy!r}: plugin {type(plugin).__name__} must {word} "
                    f"{other.__name__} in StrategyBuild.plugins, as it declares"
                )
