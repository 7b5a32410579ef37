"""Gradient projection memory (Saha, Garg & Roy, ICLR 2021; docs/methods.md, GPM).

Per projected layer, GPM keeps an orthonormal basis M of the inputs past tasks used, and every
later task's gradients move orthogonally to it (the family's `GradientProjection`). The basis
grows after each task from the representation matrix R of the task just trained:
- task 1: M = U[:, :r] with r = #{k : cumsum(s^2)_k / ||R||_F^2 < eps} (`initial_basis`);
- later tasks: the residual R^ = R - M M^T R gives directions U^ with values s^, added one at a
  time while the energy already captured stays below eps (`extend_basis`).
Per-benchmark values are in gpm.toml beside this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from clbench.linalg import (
    as_basis,
    as_matrix,
    check_threshold,
    leading_directions,
    residual_directions,
    steps_below,
)
from clbench.strategies import StrategyBuild
from clbench.strategies.projection import GradientProjection, ProjectionParams, layer_thresholds
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range

F64 = torch.float64


@dataclass
class GPMParams(ProjectionParams):
    """GPM's parameters: those of the family (`ProjectionParams`: thresholds, per-task increment,
    sample counts and per-layer caps)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"threshold": Range(0.9, 0.999)}


def initial_basis(R: Tensor, threshold: float) -> Tensor:
    """The basis after the first task (docs/methods.md, GPM, Task 1): M = U[:, :r], r by the
    strict energy rule (`clbench.linalg.energy_rank`)."""
    return leading_directions(R, threshold)[0]


def new_directions(R: Tensor, M: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The r new residual directions and their singular values by GPM's rule for task t > 1.

    total = ||R||_F^2; acc = (total - ||R^||_F^2) / total; add s^_k^2 / total one at a
    time while acc < threshold (docs/methods.md, GPM, Task t > 1).
    """
    check_threshold(threshold)
    total = R.square().sum()
    if total == 0:
        return R.new_zeros(R.shape[0], 0), R.new_zeros(0)
    U_hat, s_hat, residual_energy = residual_directions(R, M)
    r = steps_below((total - residual_energy) / total, s_hat**2 / total, threshold)
    return U_hat[:, :r], s_hat[:r]


def extend_basis(R: Tensor, M: Tensor, threshold: float) -> tuple[Tensor, int]:
    """GPM's basis update for task t > 1 (docs/methods.md, GPM, Task t > 1).

    Returns ``(M_new, added)`` with M_new = [M, U^[:, :r]] capped at d columns and
    ``added`` the number of new columns (0 when the residual carries too little energy or
    is exactly zero). ||R^||_F^2 is computed directly; it equals sum(s^^2).
    """
    R = as_matrix(R, "R", F64)
    M = as_basis(M, R)
    U_new, _ = new_directions(R, M, threshold)
    M_new = torch.cat([M, U_new], dim=1)[:, : R.shape[0]]
    return M_new, M_new.shape[1] - M.shape[1]


class GPMMemory:
    """GPM's bases: M from the energy rule on the first task, grown by the residual rule
    afterwards; stored in float32 like the reference's, updated in float64."""

    def __init__(self, params: ProjectionParams) -> None:
        self.params = params
        self.bases: dict[str, Tensor] = {}

    def thresholds(self, task: int, names: Sequence[str]) -> dict[str, float]:
        return layer_thresholds(self.params.threshold, self.params.threshold_increment, task, names)

    def update(self, task: int, representations: dict[str, Tensor]) -> None:
        for name, eps in self.thresholds(task, list(representations)).items():
            R = representations[name]
            if name in self.bases:
                M, _ = extend_basis(R, self.bases[name], eps)
            else:
                M = initial_basis(R, eps)
            self.bases[name] = M.to(R.dtype)

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        basis = self.bases.get(name)
        return None if basis is None or basis.shape[1] == 0 else (basis, None)

    def kept(self) -> Iterable[Tensor]:
        return self.bases.values()

    def sizes(self) -> dict[str, int]:
        return {name: basis.shape[1] for name, basis in self.bases.items()}


@describe("GPM", family="projection")
def gpm(model: nn.Module, params: GPMParams) -> StrategyBuild:
    """GPM: gradients move orthogonally to the input subspaces that past tasks used."""
    return StrategyBuild(plugins=[GradientProjection(GPMMemory(params), params)])
