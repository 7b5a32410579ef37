"""Initialised training from the initial weights: every task starts from scratch."""

import copy
from dataclasses import dataclass

from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class FromScratchParams:
    """Training from scratch has no parameters of its own."""


class ResetToInitial(SupervisedPlugin):
    """Before every task, the shared modules return to their weights from before the first task (the
    heads of other tasks are kept; the current task's head is still at its initial weights)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.initial = copy.deepcopy(model.shared_modules().state_dict())

    def before_training_exp(self, strategy, **kwargs) -> None:
        strategy.model.shared_modules().load_state_dict(self.initial)

    def kept_bytes(self) -> int:
        """The initial backbone weights are kept for the whole run."""
        return sum(t.numel() * t.element_size() for t in self.initial.values())


@describe("From scratch", family="update magnitude", role="bound")
def from_scratch(model: nn.Module, params: FromScratchParams) -> StrategyBuild:
    """From scratch: every task trains the backbone again from its initial weights."""
    return StrategyBuild(plugins=[ResetToInitial(model)])
