"""Gradient projection in the common null space (GPCNS; Hifipsysta/GPCNS, ACM MM 2024;
docs/methods.md, GPCNS), as an add-on over GPM, SGP or TRGP (`base`).

The base method runs unchanged (its feature basis grows by its own rule from each task's
representations; TRGP's trust-region scales train as in TRGP) except for what is projected out
of the gradients. After each task, GPCNS also keeps, per projected layer, the gradient of the task's
last training step (already projected, as the reference reads it), stacks those of all finished
tasks, and takes their top right singular vectors V (`gpcns_gradient_space`). V is merged with the
base's feature basis F (SGP's columns weighted by its importance) by one more decomposition,
`gpcns_merge`, into B with importances lambda, and every later step projects
g <- g - g B diag(lambda) B^T through the family's shared `GradientProjection`: the update moves in
the common null space of the past tasks' features and of their final gradients, softly where
lambda < 1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from baselines.sgp import SGPMemory
from baselines.trgp import TRGPMemory, TRGPParams, TrustRegionScaling, scaled_weights
from clbench.linalg import gpcns_gradient_space, gpcns_merge
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.projection import (
    BasisMemory,
    GPMMemory,
    GradientProjection,
    ProjectionParams,
    layer_thresholds,
    projected_layers,
    weight_parameter,
)
from clbench.strategy_info import describe

Base = Literal["gpm", "sgp", "trgp"]
#: The fields of TRGPParams that GPM and SGP share (the rest are TRGP's own).
TRGP_SHARED = {f.name for f in fields(ProjectionParams)}
#: The reference's importance coefficient c per base (its scripts' `scale_coff`).
REFERENCE_COEFFICIENT: dict[str, float] = {"gpm": 5.0, "sgp": 1.5, "trgp": 4.5}


@dataclass
class GPCNSParams(TRGPParams):
    """GPCNS's parameters: the base method's (thresholds, samples and caps as `ProjectionParams`;
    alpha for base `sgp`; the trust-region fields of `TRGPParams` for base `trgp`) plus
    base: the method GPCNS is added to, `gpm`, `sgp` or `trgp`;
    coefficient: c of the importance (c + 1) sigma / (c sigma + max sigma) of the merged basis
        (None: the reference's value for the base, 5 / 1.5 / 4.5);
    merge_energy: what the merge's cumulative rule sums, `sigma` or `squared` (None: the
        reference's, sigma for gpm and sgp; for trgp sigma after the first task and sigma^2 after
        later tasks). The gradient space always sums sigma, and both use the base's thresholds."""

    base: Base = "gpm"
    alpha: float = 10.0
    coefficient: float | None = None
    merge_energy: Literal["sigma", "squared"] | None = None

    SOURCES: ClassVar[dict[str, str]] = {
        **TRGPParams.SOURCES,
        "batchnorm": "clbench's choice: frozen after the first task for every base, as GPCNS's GPM "
        "and SGP scripts (Hifipsysta/GPCNS main_cf100_GPCNS.py:169); its CIFAR-100 TRGP script's "
        "freezing condition can never hold (main_cf100_TRGP_GPCNS.py:384)",
        "base": "pick the base method with gpcns.base",
        "alpha": "SGP's scale_coff, used with base = sgp (sahagobinda/SGP "
        "ImageClassification/main_sgp_cifar100.py:494)",
        "coefficient": "unset: the CIFAR-100 script's c for the base, 5 / 1.5 / 4.5 "
        "(Hifipsysta/GPCNS main_cf100_GPCNS.py:502, main_cf100_SGP_GPCNS.py:592, "
        "main_cf100_TRGP_GPCNS.py:1179)",
        "merge_energy": "unset: the reference's rule per base, sigma for gpm and sgp, for trgp "
        "sigma after the first task and sigma^2 afterwards (Hifipsysta/GPCNS "
        "main_cf100_TRGP_GPCNS.py:690-698)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.alpha >= 0, f"gpcns.alpha={self.alpha} must be >= 0")
        require(
            self.coefficient is None or self.coefficient >= 0,
            f"gpcns.coefficient={self.coefficient} must be >= 0",
        )

    def unused_fields(self) -> tuple[str, ...]:
        """The fields the chosen base never reads (protocol cards mark them unused)."""
        trust = tuple(f.name for f in fields(TRGPParams) if f.name not in TRGP_SHARED)
        return ("alpha",) * (self.base != "sgp") + trust * (self.base != "trgp")

    def importance_coefficient(self) -> float:
        return REFERENCE_COEFFICIENT[self.base] if self.coefficient is None else self.coefficient

    def merge_squared(self, task: int) -> bool:
        if self.merge_energy is not None:
            return self.merge_energy == "squared"
        return self.base == "trgp" and task > 0


class GPCNSMemory:
    """The base's memory plus each layer's stacked final gradients and the merged basis; it is
    the `BasisMemory` the projection reads (`projector` gives the merged basis)."""

    def __init__(self, base: BasisMemory, params: GPCNSParams) -> None:
        self.base = base
        self.params = params
        self.gradients: dict[str, Tensor] = {}
        self.finished: dict[str, Tensor] = {}
        self.merged: dict[str, tuple[Tensor, Tensor]] = {}
        self.gradient_sizes: dict[str, int] = {}

    def finish_task(self, gradients: dict[str, Tensor]) -> None:
        """The last training step's gradient of each layer (out x d) for the coming update."""
        self.finished = gradients

    def update(self, task: int, representations: dict[str, Tensor]) -> None:
        self.base.update(task, representations)
        p = self.params
        coefficient = None if task == 0 else p.importance_coefficient()
        names = list(representations)
        for name, eps in layer_thresholds(p.threshold, p.threshold_increment, task, names).items():
            rows = self.finished[name].to(torch.float32)
            stacked = self.gradients.get(name)
            self.gradients[name] = rows if stacked is None else torch.cat([stacked, rows])
            V = gpcns_gradient_space(self.gradients[name], eps)
            found = self.base.projector(name)
            F = V.new_zeros(V.shape[0], 0)
            if found is not None:
                M, scale = found
                F = M if scale is None else M * scale
            B, importance = gpcns_merge(V, F, eps, p.merge_squared(task), coefficient)
            dtype = representations[name].dtype
            self.merged[name] = (B.to(dtype), importance.to(dtype))
            self.gradient_sizes[name] = V.shape[1]
        self.finished = {}

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        found = self.merged.get(name)
        return None if found is None or found[0].shape[1] == 0 else found

    def kept_bytes(self) -> int:
        tensors = [*self.gradients.values(), *(t for pair in self.merged.values() for t in pair)]
        return self.base.kept_bytes() + sum(t.numel() * t.element_size() for t in tensors)

    def sizes(self) -> dict[str, int]:
        return {name: basis.shape[1] for name, (basis, _) in self.merged.items()}


class FinalGradients(SupervisedPlugin):
    """Copies each projected layer's weight gradient at every step (after the projection, before
    the optimizer), so that the memory receives the task's last one; a copy into buffers kept for
    the task, not a reference to a tensor that the next zero_grad may clear."""

    def __init__(self, memory: GPCNSMemory) -> None:
        super().__init__()
        self.memory = memory
        self.weights: dict[str, nn.Parameter] = {}
        self.buffers: dict[str, Tensor] = {}

    def before_training_exp(self, strategy, **kwargs) -> None:
        layers = projected_layers(strategy.model)
        self.weights = {name: weight_parameter(layer) for name, layer in layers.items()}
        self.buffers = {}

    @torch.no_grad()
    def before_update(self, strategy, **kwargs) -> None:
        for name, weight in self.weights.items():
            if weight.grad is None:
                continue
            if name not in self.buffers:
                self.buffers[name] = torch.empty_like(weight.grad)
            self.buffers[name].copy_(weight.grad)

    def after_training_exp(self, strategy, **kwargs) -> None:
        missing = sorted(set(self.weights) - set(self.buffers))
        require(not missing, f"gpcns: no gradient was recorded for layers {missing}")
        self.memory.finish_task({n: b.flatten(1) for n, b in self.buffers.items()})
        self.buffers = {}

    def kept_bytes(self) -> int:
        """Nothing of its own: the gradients it hands over are counted by the memory."""
        return 0

    def task_report(self) -> dict[str, dict[str, int]]:
        """Rank of each layer's gradient space and size of the base's feature basis (the merged
        basis is reported as basis_sizes)."""
        return {
            "gradient_space_sizes": dict(self.memory.gradient_sizes),
            "feature_basis_sizes": self.memory.base.sizes(),
        }


@describe("GPCNS", family="projection")
def gpcns(model: nn.Module, params: GPCNSParams) -> StrategyBuild:
    """GPCNS: the base method (gpm, sgp or trgp) also projects out the past tasks' final
    gradients, merged with its feature basis into one softly weighted basis."""
    plugins: list[SupervisedPlugin] = []
    if params.base == "trgp":
        scaled_weights(model)
        base: BasisMemory = TRGPMemory(params)
        plugins.append(TrustRegionScaling(params, base))
    else:
        base = SGPMemory(params) if params.base == "sgp" else GPMMemory(params)
    memory = GPCNSMemory(base, params)
    plugins += [FinalGradients(memory), GradientProjection(memory, params)]
    return StrategyBuild(plugins=plugins, model=model)
