"""Frozen training: the update-magnitude endpoint where the shared network stops after the first
task."""

from dataclasses import dataclass

from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin
from clbench.strategy_info import describe


@dataclass
class FrozenParams:
    """Frozen training has no parameters of its own."""


class FreezeBackbone(StrategyPlugin):
    """From the second task on, only the heads train (the optimizer is built over what is
    trainable)."""

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.task_index(strategy) > 0:
            strategy.model.backbone.requires_grad_(False)


@describe("Frozen", family="update magnitude", role="bound")
def frozen(model: nn.Module, params: FrozenParams) -> StrategyBuild:
    """Frozen training: the whole network learns the first task; afterwards only the heads train."""
    return StrategyBuild(plugins=[FreezeBackbone()])
