"""Averaged gradient episodic memory (Chaudhry et al., ICLR 2019) through Avalanche's plugin."""

from dataclasses import dataclass

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class AGEMParams:
    """patterns_per_experience: samples stored per task (the paper's 250).
    sample_size: memory samples drawn for the reference gradient (the paper's 256)."""

    patterns_per_experience: int = 250
    sample_size: int = 256

    def __post_init__(self) -> None:
        require(
            self.patterns_per_experience >= 1,
            f"agem.patterns_per_experience={self.patterns_per_experience} must be >= 1",
        )
        require(self.sample_size >= 1, f"agem.sample_size={self.sample_size} must be >= 1")


@describe("A-GEM", family="rehearsal")
def agem(model: nn.Module, params: AGEMParams) -> StrategyBuild:
    """A-GEM: project the gradient when it conflicts with the average gradient on the memory."""
    from avalanche.training.plugins import (
        AGEMPlugin,  # training imports Avalanche; listing does not
    )

    return StrategyBuild(plugins=[AGEMPlugin(params.patterns_per_experience, params.sample_size)])
