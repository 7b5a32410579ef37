"""Frozen training: the update-magnitude endpoint where the shared network stops after the first
task."""

from dataclasses import dataclass

from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class FrozenParams:
    """Frozen training has no parameters of its own."""


class FreezeBackbone(SupervisedPlugin):
    """From the second task on, only the heads train (the optimizer is built over what is
    trainable)."""

    def __init__(self) -> None:
        super().__init__()
        self.task = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.task > 0:
            strategy.model.backbone.requires_grad_(False)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.task += 1


@describe("Frozen", family="update magnitude", role="bound")
def frozen(model: nn.Module, params: FrozenParams) -> StrategyBuild:
    """Frozen training: the whole network learns the first task; afterwards only the heads train."""
    return StrategyBuild(plugins=[FreezeBackbone()])
