"""Joint training (upper bound) in its cumulative form."""

from dataclasses import dataclass

from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class JointParams:
    """Joint training has no parameters of its own."""


@describe("Joint", family="bounds", role="oracle")
def joint(model: nn.Module, params: JointParams) -> StrategyBuild:
    """Joint training (upper bound): task t trains on the union of tasks 1..t; the last row of the
    accuracy matrix is the model trained jointly on every task."""
    return StrategyBuild(cumulative=True)
