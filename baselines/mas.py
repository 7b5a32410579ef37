"""Memory aware synapses (Aljundi et al., ECCV 2018) through Avalanche's plugin."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class MASParams:
    """lambda_reg: weight of the penalty (the paper's lambda = 1).
    alpha: share of the previous importance kept when a task's importance is added."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"lambda_reg": Range(0.01, 100.0, log=True)}

    lambda_reg: float = 1.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        require(self.lambda_reg >= 0, f"mas.lambda_reg={self.lambda_reg} must be >= 0")
        require(0 <= self.alpha <= 1, f"mas.alpha={self.alpha} must lie in [0, 1]")


@describe("MAS", family="regularisation")
def mas(model: nn.Module, params: MASParams) -> StrategyBuild:
    """MAS: a penalty weighted by the sensitivity of the output norm to each parameter."""
    from avalanche.training.plugins import MASPlugin  # training imports Avalanche; listing does not

    return StrategyBuild(plugins=[MASPlugin(lambda_reg=params.lambda_reg, alpha=params.alpha)])
