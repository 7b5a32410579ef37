"""Gradient projection in the common null space (GPCNS; Hifipsysta/GPCNS, ACM MM 2024;
docs/methods.md, GPCNS), as an add-on over GPM, SGP or TRGP (`base`).

The base method runs unchanged (its feature basis grows by its own rule from each task's
representations; TRGP's trust-region scales train as in TRGP) except for what is projected out
of the gradients. After each task, GPCNS also keeps, per projected layer, the gradient of the task's
last training step (already projected, as the reference reads it), stacks those of all finished
tasks, and takes their top right singular vectors V (`gradient_space`). V is merged with the
base's feature basis F (SGP's columns weighted by its importance) by one more decomposition,
`merge`, into B with importances lambda, and every later step projects
g <- g - g B diag(lambda) B^T through the family's shared `GradientProjection`: the update moves in
the common null space of the past tasks' features and of their final gradients, softly where
lambda < 1.

GPCNS composes its base: its parameters are the base method's own (`GPMParams`, `SGPParams` or
`TRGPParams`) plus GPCNS's (`GPCNSSettings`), one class per base, chosen by `base`; the memory
wraps the base's memory. Per-benchmark values are in gpcns.toml beside this module, each base's
tables extending the base's presets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from baselines.gpm import F64, GPMMemory, GPMParams
from baselines.sgp import SGPMemory, SGPParams, importance
from baselines.trgp import TRGPMemory, TRGPParams, TrustRegionScaling, scaled_weights
from clbench.linalg import as_matrix, check_threshold, left_singular, resolved
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin, TaskReport
from clbench.strategies.projection import (
    BasisMemory,
    GradientProjection,
    ProjectionParams,
    layer_thresholds,
    projected_layers,
    weight_parameter,
)
from clbench.strategy_info import describe

#: The reference's importance coefficient c per base (its scripts' `scale_coff`).
REFERENCE_COEFFICIENT: dict[str, float] = {"gpm": 5.0, "sgp": 1.5, "trgp": 4.5}


@dataclass
class GPCNSSettings(ProjectionParams):
    """GPCNS's own parameters, added to its base method's:
    coefficient: c of the importance (c + 1) sigma / (c sigma + max sigma) of the merged basis
        (None: the reference's value for the base, 5 / 1.5 / 4.5);
    merge_energy: what the merge's cumulative rule sums, `sigma` or `squared` (None: the
        reference's, sigma for gpm and sgp; for trgp sigma after the first task and sigma^2 after
        later tasks). The gradient space always sums sigma, and both use the base's thresholds."""

    base: str = "gpm"
    coefficient: float | None = None
    merge_energy: Literal["sigma", "squared"] | None = None

    OWN_SOURCES: ClassVar[dict[str, str]] = {
        "batchnorm": "clbench's choice: frozen after the first task for every base, as GPCNS's GPM "
        "and SGP scripts (Hifipsysta/GPCNS main_cf100_GPCNS.py:169); its CIFAR-100 TRGP script's "
        "freezing condition can never hold (main_cf100_TRGP_GPCNS.py:384)",
        "base": "pick the base method with gpcns.base",
        "coefficient": "unset: the CIFAR-100 script's c for the base, 5 / 1.5 / 4.5 "
        "(Hifipsysta/GPCNS main_cf100_GPCNS.py:502, main_cf100_SGP_GPCNS.py:592, "
        "main_cf100_TRGP_GPCNS.py:1179)",
        "merge_energy": "unset: the reference's rule per base, sigma for gpm and sgp, for trgp "
        "sigma after the first task and sigma^2 afterwards (Hifipsysta/GPCNS "
        "main_cf100_TRGP_GPCNS.py:690-698)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.coefficient is None or self.coefficient >= 0,
            f"gpcns.coefficient={self.coefficient} must be >= 0",
        )

    def importance_coefficient(self) -> float:
        return REFERENCE_COEFFICIENT[self.base] if self.coefficient is None else self.coefficient

    def merge_squared(self, task: int) -> bool:
        if self.merge_energy is not None:
            return self.merge_energy == "squared"
        return self.base == "trgp" and task > 0


@dataclass
class GPCNSOverGPM(GPCNSSettings, GPMParams):
    """GPCNS over GPM: GPM's parameters and GPCNS's (`GPCNSSettings`)."""

    base: Literal["gpm"] = "gpm"

    SOURCES: ClassVar[dict[str, str]] = {**GPMParams.SOURCES, **GPCNSSettings.OWN_SOURCES}


@dataclass
class GPCNSOverSGP(GPCNSSettings, SGPParams):
    """GPCNS over SGP: SGP's parameters (alpha too) and GPCNS's (`GPCNSSettings`)."""

    base: Literal["sgp"] = "sgp"

    SOURCES: ClassVar[dict[str, str]] = {**SGPParams.SOURCES, **GPCNSSettings.OWN_SOURCES}


@dataclass
class GPCNSOverTRGP(GPCNSSettings, TRGPParams):
    """GPCNS over TRGP: TRGP's parameters (the trust region's too) and GPCNS's
    (`GPCNSSettings`)."""

    base: Literal["trgp"] = "trgp"

    SOURCES: ClassVar[dict[str, str]] = {**TRGPParams.SOURCES, **GPCNSSettings.OWN_SOURCES}


#: GPCNS's parameters: one class per base method, chosen by `base` (the first is the default).
GPCNSParams = GPCNSOverGPM | GPCNSOverSGP | GPCNSOverTRGP


def cumulative_rank(values: Tensor, threshold: float) -> int:
    """GPCNS's rank rule (docs/methods.md, GPCNS): r = #{k : cumsum(values)_k <= threshold *
    sum(values)}, non-strict, for non-negative values in descending order (singular values, or
    their squares). 0 when all are zero."""
    check_threshold(threshold)
    values = values.detach().to(F64)
    total = values.sum()
    if total == 0:
        return 0
    return int((torch.cumsum(values, 0) <= threshold * total).sum())


def gradient_space(gradients: Tensor, threshold: float) -> Tensor:
    """GPCNS's gradient space of a layer (docs/methods.md, GPCNS): from the rows of every
    finished task's stored gradient (n x d, stacked), the top right singular vectors V (d x r),
    r by :func:`cumulative_rank` of the plain singular values."""
    rows = as_matrix(gradients, "gradients", F64)
    V, s = resolved(*left_singular(rows.T))
    return V[:, : cumulative_rank(s, threshold)]


def merge(
    V: Tensor, F: Tensor, threshold: float, squared: bool, coefficient: float | None
) -> tuple[Tensor, Tensor]:
    """GPCNS's merged basis of a layer (docs/methods.md, GPCNS): B = the leading left singular
    vectors of [V | F] (gradient space beside the base method's feature basis), r of them by
    :func:`cumulative_rank` of the singular values sigma (`squared`: of sigma^2), and their
    importance lambda = (c + 1) sigma / (c sigma + max sigma) (SGP's `importance`), or all ones
    when `coefficient` is None (after the first task). Returns (B, lambda), float64; a layer with
    neither gives d x 0."""
    d = V.shape[0]
    if F.shape[0] != d:
        raise ValueError(
            f"V and F must have the same rows, got {tuple(V.shape)} and {tuple(F.shape)}"
        )
    stacked = torch.cat([V.detach().to(F64), F.detach().to(dtype=F64, device=V.device)], dim=1)
    if stacked.shape[1] == 0:
        return stacked, stacked.new_zeros(0)
    U, s = resolved(*left_singular(stacked))
    r = cumulative_rank(s.square() if squared else s, threshold)
    weights = torch.ones_like(s[:r]) if coefficient is None else importance(s[:r], coefficient)
    return U[:, :r], weights


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
            V = gradient_space(self.gradients[name], eps)
            found = self.base.projector(name)
            F = V.new_zeros(V.shape[0], 0)
            if found is not None:
                M, scale = found
                F = M if scale is None else M * scale
            B, weights = merge(V, F, eps, p.merge_squared(task), coefficient)
            dtype = representations[name].dtype
            self.merged[name] = (B.to(dtype), weights.to(dtype))
            self.gradient_sizes[name] = V.shape[1]
        self.finished = {}

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        found = self.merged.get(name)
        return None if found is None or found[0].shape[1] == 0 else found

    def kept(self) -> Iterable[Tensor]:
        merged = (t for pair in self.merged.values() for t in pair)
        return [*self.base.kept(), *self.gradients.values(), *merged]

    def sizes(self) -> dict[str, int]:
        return {name: basis.shape[1] for name, (basis, _) in self.merged.items()}


class FinalGradients(StrategyPlugin):
    """Copies each projected layer's weight gradient at every step (after the projection, before
    the optimizer), so that the memory receives the task's last one; a copy into buffers kept for
    the task, not a reference to a tensor that the next zero_grad may clear. It precedes the
    projection, whose memory update at a task's end reads the gradients it hands over. It keeps
    nothing of its own: the memory counts those gradients."""

    precedes = (GradientProjection,)

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

    def task_report(self) -> TaskReport:
        """Rank of each layer's gradient space and size of the base's feature basis (the merged
        basis is the projection's kept basis)."""
        return TaskReport(
            subspaces={
                "gradient space rank": dict(self.memory.gradient_sizes),
                "feature basis size": self.memory.base.sizes(),
            }
        )


@describe("GPCNS", family="projection")
def gpcns(model: nn.Module, params: GPCNSParams) -> StrategyBuild:
    """GPCNS: the base method (gpm, sgp or trgp) also projects out the past tasks' final
    gradients, merged with its feature basis into one softly weighted basis."""
    plugins: list[StrategyPlugin] = []
    base: BasisMemory
    if isinstance(params, GPCNSOverTRGP):
        scaled_weights(model)
        base = trgp_memory = TRGPMemory(params)
        plugins.append(TrustRegionScaling(params, trgp_memory))
    elif isinstance(params, GPCNSOverSGP):
        base = SGPMemory(params)
    else:
        base = GPMMemory(params)
    memory = GPCNSMemory(base, params)
    plugins += [FinalGradients(memory), GradientProjection(memory, params)]
    return StrategyBuild(plugins=plugins, model=model)
