"""Synaptic intelligence (Zenke et al., ICML 2017) through Avalanche's plugin."""

from dataclasses import dataclass

from avalanche.training.plugins import SynapticIntelligencePlugin
from torch import nn

from clbench.params import require
from clbench.strategies import StrategyBuild


@dataclass
class SIParams:
    """si_lambda: strength c of the surrogate penalty (the paper's split-MNIST c = 0.1 here).
    eps: damping xi of the importance denominator (the paper's 1e-3)."""

    si_lambda: float = 0.1
    eps: float = 1e-3

    def __post_init__(self) -> None:
        require(self.si_lambda >= 0, f"si.si_lambda={self.si_lambda} must be >= 0")
        require(self.eps > 0, f"si.eps={self.eps} must be > 0")


def si(model: nn.Module, params: SIParams) -> StrategyBuild:
    """SI: a penalty weighted by each parameter's path-integral contribution to past losses."""
    return StrategyBuild(plugins=[SynapticIntelligencePlugin(params.si_lambda, eps=params.eps)])
