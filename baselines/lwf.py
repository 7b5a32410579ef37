"""Learning without forgetting (Li & Hoiem, ECCV 2016) through Avalanche's plugin."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class LwFParams:
    """alpha: weight of the distillation loss (the paper's lambda_o = 1).
    temperature: softmax temperature of the distillation (the paper's T = 2)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {
        "alpha": Range(0.1, 10.0, log=True),
        "temperature": Range(1.0, 4.0),
    }

    alpha: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        require(self.alpha >= 0, f"lwf.alpha={self.alpha} must be >= 0")
        require(self.temperature > 0, f"lwf.temperature={self.temperature} must be > 0")


@describe("LwF", family="regularisation")
def lwf(model: nn.Module, params: LwFParams) -> StrategyBuild:
    """LwF: distil the previous model's outputs on the current task's inputs."""
    from avalanche.training.plugins import LwFPlugin  # training imports Avalanche; listing does not

    return StrategyBuild(plugins=[LwFPlugin(alpha=params.alpha, temperature=params.temperature)])
