"""Gradient episodic memory (Lopez-Paz & Ranzato, NeurIPS 2017) through Avalanche's plugin."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class GEMParams:
    """patterns_per_experience: samples stored per task (the paper's 256).
    memory_strength: the margin gamma added to the QP constraints (the paper's 0.5)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"memory_strength": Range(0.0, 1.0)}

    patterns_per_experience: int = 256
    memory_strength: float = 0.5

    def __post_init__(self) -> None:
        require(
            self.patterns_per_experience >= 1,
            f"gem.patterns_per_experience={self.patterns_per_experience} must be >= 1",
        )
        require(
            self.memory_strength >= 0, f"gem.memory_strength={self.memory_strength} must be >= 0"
        )


@describe("GEM", family="rehearsal")
def gem(model: nn.Module, params: GEMParams) -> StrategyBuild:
    """GEM: solve a QP (quadprog) so the step does not raise any past task's memory loss."""
    from avalanche.training.plugins import GEMPlugin  # training imports Avalanche; listing does not

    return StrategyBuild(
        plugins=[GEMPlugin(params.patterns_per_experience, params.memory_strength)]
    )
