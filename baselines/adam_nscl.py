"""Adam-NSCL: training in the null space of the feature covariance (Wang et al., CVPR 2021;
docs/methods.md, Adam-NSCL).

After every task each layer's uncentered input covariance, summed over every task so far, is eigen-
decomposed (`null_space`); the eigenvectors whose eigenvalue is at most `svd_thres` times
the smallest span the layer's null space U. On every later task each step the optimizer (Adam) takes
on a shared weight is replaced by its projection onto that null space, scaled as the reference
scales it: step <- step U U^T / ||U U^T||_F, with ||U U^T||_F = sqrt(dim U). The projection is
computed through the smaller of the two bases: U itself, or the range basis V as step - step V V^T
(the family's shared `Projection`). Heads are never projected; a single shared head (PMNIST) is, as
in the projection family; BatchNorm is frozen after the first task (`batchnorm`).

Where clbench departs from the reference code: the covariance sums every input vector (the
reference's `svd_based_without_avg` variant; its default first averages each batch), through the
model in eval mode; one learning rate for all trainable tensors with the harness's validation
schedule (the reference: features 1e-4 on the first task and 5e-5 after, heads 1e-3, BatchNorm
5e-4, a multi-step schedule); BatchNorm is frozen after the first task instead of trained under an
EWC penalty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from clbench.linalg import Projection, gram_eigh
from clbench.models import freeze_batchnorm_statistics
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import NULL_SPACE_RANK, StrategyPlugin, TaskReport
from clbench.strategies.projection import (
    frozen_after_first_task,
    projected_layers,
    weight_parameter,
)
from clbench.strategies.task_data import layer_grams
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class AdamNSCLParams:
    """Adam-NSCL's parameters.

    svd_thres: the null space holds the eigenvectors with eigenvalue <= svd_thres * the smallest.
    normalize: divide U U^T by its Frobenius norm, as the reference does (True).
    batchnorm: `freeze` (after the first task, as the projection family) or `train` (unprojected).
    gram_batch_size: samples per forward pass while accumulating the covariance; None: the
        protocol's training batch size.
    The optimizer (Adam, with its lr and weight decay) is set by the presets' protocol tables
    (`protocol.optimizer = "adam"`, adam_nscl.toml beside this module)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"svd_thres": Range(1.0, 100.0, log=True)}

    svd_thres: float = 10.0
    normalize: bool = True
    batchnorm: Literal["freeze", "train"] = "freeze"
    gram_batch_size: int | None = None

    SOURCES: ClassVar[dict[str, str]] = {
        "svd_thres": "Adam-NSCL's 10-task runs (ShipengWang/Adam-NSCL scripts_svd/adamnscl.sh:8)",
        "normalize": "the reference's normalised projector (ShipengWang/Adam-NSCL "
        "optim/adam_svd.py:113-114)",
        "batchnorm": "clbench's choice: frozen after the first task, as the projection family; the "
        "reference trains BatchNorm at its own rate under an EWC-style penalty "
        "(ShipengWang/Adam-NSCL svd_agent/svd_agent.py:36-43)",
        "gram_batch_size": "the training batch size",
    }

    def __post_init__(self) -> None:
        require(self.svd_thres >= 1, f"adam-nscl.svd_thres={self.svd_thres} must be >= 1")
        require(
            self.gram_batch_size is None or self.gram_batch_size >= 1,
            f"adam-nscl.gram_batch_size={self.gram_batch_size} must be >= 1 (or none)",
        )


def null_space(G: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Adam-NSCL's split of a layer's input space (docs/methods.md, Adam-NSCL): with the
    eigenvalues lambda of the uncentered covariance (or Gram matrix) G, clamped at 0, the null
    space is spanned by the eigenvectors with lambda <= threshold * min(lambda). The smallest
    eigenvalue is taken no lower than the numerical floor d * eps * max(lambda) (eps of float64):
    a rank-deficient G's zero eigenvalues come out as round-off of either sign, and without the
    floor the rule would keep a random subset of them. Returns (range basis, null basis),
    float64, their columns together an orthonormal basis of R^d."""
    if threshold < 1:
        raise ValueError(f"threshold {threshold} must be >= 1 (a multiple of the smallest one)")
    U, s = gram_eigh(G)  # descending
    eigenvalues = s.square()
    floor = len(eigenvalues) * torch.finfo(torch.float64).eps * eigenvalues[0]
    null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)
    return U[:, ~null], U[:, null]


@dataclass
class NullSpaceStep:
    """One layer's step transform: step <- step U U^T * factor, as (step U) U^T when the null
    basis U is the smaller, else as step - step V V^T through the range basis V."""

    weight: nn.Parameter
    factor: float
    null_basis: Tensor | None = None
    projection: Projection | None = None

    def apply(self, step: Tensor) -> Tensor:
        if self.null_basis is not None:
            return (step @ self.null_basis) @ self.null_basis.T * self.factor
        assert self.projection is not None  # one of the two is given
        return self.projection.apply(step).mul_(self.factor)


class NullSpaceSteps(StrategyPlugin):
    """Accumulates the covariances and projects every optimizer step (module docstring)."""

    def __init__(self, params: AdamNSCLParams) -> None:
        super().__init__()
        self.params = params
        self.grams: dict[str, Tensor] = {}
        self.null_ranks: dict[str, int] = {}
        self.steps: list[NullSpaceStep] = []
        self.frozen: list[nn.Parameter] = []
        self.before: list[Tensor] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.steps, self.frozen = [], []
        if self.task_index(strategy) == 0:
            return
        self.null_ranks = {}
        for name, layer in projected_layers(strategy.model).items():
            weight = weight_parameter(layer)
            range_basis, null_basis = null_space(self.grams[name], self.params.svd_thres)
            r = null_basis.shape[1]
            self.null_ranks[name] = r
            factor = 1 / math.sqrt(r) if self.params.normalize and r > 0 else 1.0
            if r <= range_basis.shape[1]:
                step = NullSpaceStep(weight, factor, null_basis=null_basis.to(weight))
            else:
                step = NullSpaceStep(
                    weight, factor, projection=Projection.of(range_basis, None, like=weight)
                )
            self.steps.append(step)
        if self.params.batchnorm == "freeze":
            self.frozen = frozen_after_first_task(strategy.model)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.task_index(strategy) > 0 and self.params.batchnorm == "freeze":
            freeze_batchnorm_statistics(strategy.model)

    @torch.no_grad()
    def before_update(self, strategy, **kwargs) -> None:
        for p in self.frozen:
            p.grad = None  # the optimizer leaves tensors without a gradient alone
        self.before = [step.weight.detach().clone() for step in self.steps]

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        for step, old in zip(self.steps, self.before, strict=True):
            weight = step.weight
            change = (weight - old).view(weight.shape[0], -1)
            weight.copy_(old + step.apply(change).view_as(weight))

    def after_training_exp(self, strategy, **kwargs) -> None:
        batch_size = self.params.gram_batch_size or strategy.train_mb_size
        layers = projected_layers(strategy.model)
        grams = layer_grams(strategy, layers, [strategy.experience.dataset], batch_size)
        for name, gram in grams.items():
            self.grams[name] = self.grams[name] + gram if name in self.grams else gram

    def kept(self) -> Iterable[Tensor]:
        """The summed covariances (float64, d x d per layer)."""
        return self.grams.values()

    def task_report(self) -> TaskReport:
        """Per layer, the dimension of the null space the task trained in (none on the first
        task)."""
        return TaskReport(subspaces={NULL_SPACE_RANK: dict(self.null_ranks)})


@describe("Adam-NSCL", family="null space")
def adam_nscl(model: nn.Module, params: AdamNSCLParams) -> StrategyBuild:
    """Adam-NSCL: Adam steps projected into the null space of all past tasks' feature covariance."""
    return StrategyBuild(plugins=[NullSpaceSteps(params)])
