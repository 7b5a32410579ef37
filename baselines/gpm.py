"""Gradient projection memory (Saha, Garg & Roy, ICLR 2021; docs/methods.md, GPM)."""

from dataclasses import dataclass

from torch import nn

from clbench.strategies import StrategyBuild
from clbench.strategies.projection import GPMMemory, GradientProjection, ProjectionParams
from clbench.strategy_info import describe


@dataclass
class GPMParams(ProjectionParams):
    """GPM's parameters: see `ProjectionParams` (thresholds, per-task increment, sample counts
    and per-layer caps). Defaults are the CIFAR-100 values; the presets hold the others
    (5-datasets 0.965, PMNIST (0.95, 0.99, 0.99) with 300 samples, MiniImageNet 0.985)."""


@describe("GPM", family="projection")
def gpm(model: nn.Module, params: GPMParams) -> StrategyBuild:
    """GPM: gradients move orthogonally to the input subspaces that past tasks used."""
    return StrategyBuild(plugins=[GradientProjection(GPMMemory(params), params)])
