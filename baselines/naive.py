"""Fine-tuning: train each task from the previous task's weights, with no protection."""

from dataclasses import dataclass

from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class NaiveParams:
    """Fine-tuning has no parameters of its own."""


@describe("Fine-tuning", family="bounds", role="bound")
def naive(model: nn.Module, params: NaiveParams) -> StrategyBuild:
    """Fine-tuning (lower bound): plain training on each task in turn."""
    return StrategyBuild()
