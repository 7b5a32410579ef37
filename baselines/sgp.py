"""Scaled gradient projection (Saha & Roy, AAAI 2023; docs/methods.md, SGP)."""

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from clbench.linalg import sgp_extend_basis, sgp_initial_basis
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.projection import GPMMemory, GradientProjection, ProjectionParams
from clbench.strategy_info import describe


@dataclass
class SGPParams(ProjectionParams):
    """SGP's parameters: those of GPM (`ProjectionParams`) plus alpha, the sharpness of the
    importance f(x) = (alpha + 1) x / (alpha x + max x) on singular values (the paper's 10).
    The paper trains CIFAR-100 at lr 0.05, which the CIFAR-100 preset sets for SGP."""

    alpha: float = 10.0

    SOURCES: ClassVar[dict[str, str]] = {
        **ProjectionParams.SOURCES,
        "alpha": "SGP's scale_coff (sahagobinda/SGP ImageClassification/main_sgp_cifar100.py:494)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.alpha >= 0, f"sgp.alpha={self.alpha} must be >= 0")


class SGPMemory(GPMMemory):
    """GPM's bases plus one importance in [0, 1] per basis vector; the projection removes the
    component along u_i scaled by lambda_i, so 1 - lambda_i of it survives."""

    def __init__(self, params: SGPParams) -> None:
        super().__init__(params)
        self.importance: dict[str, Tensor] = {}

    def update(self, task: int, representations: dict[str, Tensor]) -> None:
        alpha = self.params.alpha
        for name, eps in self.thresholds(task, list(representations)).items():
            R = representations[name]
            if name in self.bases:
                M, lam = sgp_extend_basis(R, self.bases[name], self.importance[name], eps, alpha)
            else:
                M, lam = sgp_initial_basis(R, eps, alpha)
            self.bases[name], self.importance[name] = M.to(R.dtype), lam.to(R.dtype)

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        found = super().projector(name)
        return None if found is None else (found[0], self.importance[name])

    def kept_bytes(self) -> int:
        scales = sum(v.numel() * v.element_size() for v in self.importance.values())
        return super().kept_bytes() + scales


@describe("SGP", family="projection")
def sgp(model: nn.Module, params: SGPParams) -> StrategyBuild:
    """SGP: GPM whose projection is scaled by each basis vector's importance to past tasks."""
    return StrategyBuild(plugins=[GradientProjection(SGPMemory(params), params)])
