"""Initialised training from the initial weights: every task starts from scratch."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from torch import Tensor, nn

from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin
from clbench.strategy_info import describe

if TYPE_CHECKING:  # the model class imports Avalanche, which listing strategies does not
    from clbench.models.heads import MultiHeadNet


@dataclass
class FromScratchParams:
    """Training from scratch has no parameters of its own."""


class ResetToInitial(StrategyPlugin):
    """Before every task, the shared modules return to their weights from before the first task (the
    heads of other tasks are kept; the current task's head is still at its initial weights)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        shared = cast("MultiHeadNet", model).shared_modules()  # every model is a MultiHeadNet
        self.initial = copy.deepcopy(shared.state_dict())

    def before_training_exp(self, strategy, **kwargs) -> None:
        strategy.model.shared_modules().load_state_dict(self.initial)

    def kept(self) -> Iterable[Tensor]:
        """The initial backbone weights are kept for the whole run."""
        return self.initial.values()


@describe("From scratch", family="update magnitude", role="bound")
def from_scratch(model: nn.Module, params: FromScratchParams) -> StrategyBuild:
    """From scratch: every task trains the backbone again from its initial weights."""
    return StrategyBuild(plugins=[ResetToInitial(model)])
