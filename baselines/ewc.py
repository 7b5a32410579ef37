"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017) through Avalanche's plugin."""

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class EWCParams:
    """ewc_lambda: weight of the quadratic penalty (no universal value in the paper; 100 here).
    mode: `separate` keeps one penalty per past task, `online` one decayed penalty.
    decay_factor: decay of the online penalty (required by, and only used in, `online` mode)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"ewc_lambda": Range(1.0, 1e5, log=True)}

    ewc_lambda: float = 100.0
    mode: Literal["separate", "online"] = "separate"
    decay_factor: float | None = None

    def __post_init__(self) -> None:
        require(self.ewc_lambda >= 0, f"ewc.ewc_lambda={self.ewc_lambda} must be >= 0")
        require(
            self.mode == "separate" or self.decay_factor is not None,
            "ewc.decay_factor must be set when ewc.mode='online'",
        )


@describe("EWC", family="regularisation")
def ewc(model: nn.Module, params: EWCParams) -> StrategyBuild:
    """EWC: a Fisher-weighted quadratic penalty pulls weights toward their past-task values."""
    from avalanche.training.plugins import EWCPlugin  # training imports Avalanche; listing does not

    return StrategyBuild(
        plugins=[EWCPlugin(params.ewc_lambda, mode=params.mode, decay_factor=params.decay_factor)]
    )
