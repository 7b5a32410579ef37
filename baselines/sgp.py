"""Scaled gradient projection (Saha & Roy, AAAI 2023; docs/methods.md, SGP).

GPM's bases, each basis vector u_i with an importance lambda_i in [0, 1]: the projection removes
the component along u_i scaled by lambda_i, so 1 - lambda_i of it survives (P = M diag(lambda)
M^T where GPM uses M M^T). Importances come from singular values through
f(x) = (alpha + 1) x / (alpha x + max x) (`importance`). Per-benchmark values are in sgp.toml
beside this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from baselines.gpm import F64, GPMMemory, new_directions
from clbench.linalg import as_basis, as_matrix, leading_directions
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.projection import GradientProjection, ProjectionParams
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class SGPParams(ProjectionParams):
    """SGP's parameters: those of GPM (`ProjectionParams`) plus alpha, the sharpness of the
    importance f on singular values."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {
        "threshold": Range(0.9, 0.999),
        "alpha": Range(1.0, 100.0, log=True),
    }

    alpha: float = 10.0

    SOURCES: ClassVar[dict[str, str]] = {
        **ProjectionParams.SOURCES,
        "alpha": "SGP's scale_coff (sahagobinda/SGP ImageClassification/main_sgp_cifar100.py:494)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.alpha >= 0, f"sgp.alpha={self.alpha} must be >= 0")


def importance(x: Tensor, alpha: float) -> Tensor:
    """SGP's importance f(x) = (alpha + 1) x / (alpha x + max(x)) (docs/methods.md, SGP).

    Elementwise on non-negative values (singular values, not squared) with one shared
    max over all of ``x``. When every entry is 0 the result is 0 (the limit of f).
    """
    if alpha < 0:
        raise ValueError(f"alpha={alpha!r} is invalid; expected a number >= 0")
    x = x.detach().to(F64)
    if x.numel() == 0:
        return x
    if bool((x < 0).any()):
        raise ValueError("importance expects non-negative values (singular values, norms)")
    top = x.max()
    if top == 0:
        return torch.zeros_like(x)
    return (alpha + 1) * x / (alpha * x + top)


def initial_basis(R: Tensor, threshold: float, alpha: float) -> tuple[Tensor, Tensor]:
    """SGP after the first task (docs/methods.md, SGP, Task 1): M = U[:, :r] by GPM's rule and
    lambda = f(s[:r])."""
    U_r, s_r = leading_directions(R, threshold)
    return U_r, importance(s_r, alpha)


def extend_basis(
    R: Tensor, M: Tensor, lam: Tensor, threshold: float, alpha: float
) -> tuple[Tensor, Tensor]:
    """SGP's update for task t > 1 (docs/methods.md, SGP, Task t > 1).

    The strength of old basis vector u_i on the new data is ||R^T u_i||; this equals the
    reference's sqrt(sum_j (u_i^T u_cj)^2 s_cj^2) over the SVD of M M^T R, computed
    without that SVD. The residual gives r new vectors with values s^[:r] by GPM's rule.
    lambda_all = f(concat(strengths, s^[:r])) with one shared max; old entries become
    clip(new + previous, 0, 1). Returns (M_new, lam_new), both capped at d columns.
    """
    R = as_matrix(R, "R", F64)
    M = as_basis(M, R)
    if lam.shape != (M.shape[1],):
        raise ValueError(f"lam must have shape ({M.shape[1]},) to match M, got {tuple(lam.shape)}")
    lam = lam.detach().to(dtype=F64, device=R.device)
    strengths = torch.linalg.vector_norm(M.T @ R, dim=1)
    U_new, s_new = new_directions(R, M, threshold)
    weights = importance(torch.cat([strengths, s_new]), alpha)
    k = M.shape[1]
    weights[:k] = (weights[:k] + lam).clamp(0, 1)
    d = R.shape[0]
    return torch.cat([M, U_new], dim=1)[:, :d], weights[:d]


class SGPMemory(GPMMemory):
    """GPM's bases plus one importance in [0, 1] per basis vector."""

    def __init__(self, params: SGPParams) -> None:
        super().__init__(params)
        self.alpha = params.alpha
        self.importance: dict[str, Tensor] = {}

    def update(self, task: int, representations: dict[str, Tensor]) -> None:
        for name, eps in self.thresholds(task, list(representations)).items():
            R = representations[name]
            if name in self.bases:
                M, lam = extend_basis(R, self.bases[name], self.importance[name], eps, self.alpha)
            else:
                M, lam = initial_basis(R, eps, self.alpha)
            self.bases[name], self.importance[name] = M.to(R.dtype), lam.to(R.dtype)

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        found = super().projector(name)
        return None if found is None else (found[0], self.importance[name])

    def kept(self) -> Iterable[Tensor]:
        return [*super().kept(), *self.importance.values()]


@describe("SGP", family="projection")
def sgp(model: nn.Module, params: SGPParams) -> StrategyBuild:
    """SGP: GPM whose projection is scaled by each basis vector's importance to past tasks."""
    return StrategyBuild(plugins=[GradientProjection(SGPMemory(params), params)])
