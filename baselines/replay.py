"""Experience replay with a buffer shared equally among tasks, through Avalanche's plugin."""

from dataclasses import dataclass

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe


@dataclass
class ReplayParams:
    """mem_size: total samples kept, shared equally among the tasks seen so far."""

    mem_size: int = 200

    def __post_init__(self) -> None:
        require(self.mem_size >= 1, f"replay.mem_size={self.mem_size} must be >= 1")


@describe("Replay", family="rehearsal")
def replay(model: nn.Module, params: ReplayParams) -> StrategyBuild:
    """Replay: each mini-batch is joined by one of the same size drawn from the memory."""
    from avalanche.training.plugins import (
        ReplayPlugin,  # training imports Avalanche; listing does not
    )

    return StrategyBuild(plugins=[ReplayPlugin(mem_size=params.mem_size)])
