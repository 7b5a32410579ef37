"""NESS: learning in the null space of small singular values (Pham, Vepakomma & Horvath, CPAL 2026;
docs/methods.md, NESS).

The first task trains the whole network. At the start of every later task, for every
Linear/Conv2d layer except task heads (a single shared head counts as a layer, as in the
projection family):

1. merge the previous task's adapter into W and unwrap the layer;
2. G = sum x x^T over the layer's inputs on the data of all previous tasks, through the current
   network in eval mode (conv inputs unfolded into patches);
3. eigen-decompose G, clamp its eigenvalues at 0, sigma = sqrt(eigenvalues);
4. eps_tol = eps1 * sum(sigma); B = eigenvectors of the r eigenvalues with sigma <= eps_tol;
5. wrap the layer as W + A B^T (W, B frozen; A trainable, from 0); r = 0: no adapter.

Only the adapters' A and the current task's head train after the first task; BatchNorm (its running
statistics too, where the model keeps them) and every other parameter stay frozen. Where the
reference code fails, clbench differs: eigenvalues are clamped (negative float32 eigenvalues made
NaN there), the statistics cover every past task (the reference kept the first task's alone on
5-datasets), and SAM takes its rho explicitly. Per-benchmark values are in presets.toml beside
this module; the adapters are in `baselines.ness.adapters`.

Bound on the interference (tested): let X_j be task j's inputs to a layer when its basis was
built (columns of G) and sigma_i the singular values of [X_0 ... X_{t-1}]. Since B spans the
eigenvectors with sigma_i <= eps_tol and X_j's columns are among those of G,
    ||A B^T X_j||_F <= ||A||_2 ||B^T X_j||_F <= ||A||_2 sqrt(sum_{i in null} sigma_i^2)
                    <= ||A||_2 sqrt(r) eps1 sum_i sigma_i.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal, cast

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from baselines.ness.adapters import add_adapter, merge_adapters
from clbench.linalg import Projection, gram_eigh
from clbench.models import freeze_batchnorm_statistics
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import NULL_SPACE_RANK, StrategyPlugin, TaskReport
from clbench.strategies.input_projection import (
    project_inputs,
    projects_inputs,
    stop_projecting_inputs,
)
from clbench.strategies.projection import projected_layers
from clbench.strategies.sam import sam_gradient
from clbench.strategies.task_data import layer_grams, task_forward
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class NESSParams:
    """NESS's parameters.

    eps1: relative tolerance of the null space, eps_tol = eps1 * sum(sigma). Large: forgetting;
        tiny: nothing to learn with.
    optimizer: `sgdm` (SGD with the protocol's momentum and weight decay on every task) or `sam`
        (the reference's SAM scripts: SAM's perturbation on the first task only, and SGD without
        momentum on every task, with the protocol's weight decay). The presets' tables
        `"optimizer=sam"` give SAM its protocol.
    rho: SAM's radius.
    source: where the past-task statistics come from. `raw` keeps every past training input and
        recomputes G through the current network at each task boundary (the paper); `gram` keeps
        only each layer's d x d Gram matrix, summed over tasks, each task's computed through the
        network at the end of that task (this project's variant; see docs/methods.md).
    gram_batch_size: samples per forward pass while accumulating Gram matrices. None (default):
        the protocol's training batch size, as the reference; with batch-statistics BatchNorm the
        batch size changes the layers' inputs and so the null space.
    route: how an adapted layer trains. `factored`: W + A B^T with A trainable (the paper).
        `direct`: W itself trains with its gradient kept in span(B), projected through the
        d - r complement directions inside the layer's backward, and the weight decay applied
        to W - W_start; with SGD (momentum and weight decay included) the iterates are the same,
        W_direct = W + A B^T, up to rounding (tested step for step). Linear layers only;
        others stay factored. `auto` (default): per layer, whichever costs fewer
        multiplications per step (`direct_is_cheaper`). Trainable parameters count out x r
        either way.
    """

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"eps1": Range(1e-5, 1e-1, log=True)}

    eps1: float = 0.001
    optimizer: Literal["sgdm", "sam"] = "sgdm"
    rho: float = 0.05
    source: Literal["raw", "gram"] = "raw"
    gram_batch_size: int | None = None
    route: Literal["auto", "factored", "direct"] = "auto"

    SOURCES: ClassVar[dict[str, str]] = {
        "eps1": "NESS's CIFAR-100 and 5-datasets eps1 (pacman-ctm/NESS scripts.sh:4, 7)",
        "optimizer": "the SGD-momentum scripts (pacman-ctm/NESS scripts.sh:4)",
        "rho": "SAM's default radius, which NESS keeps (pacman-ctm/NESS flatness_minima.py:5)",
        "source": "every past training input, as the reference (pacman-ctm/NESS "
        "main_ness_cifar100_sgd.py:533, 587)",
        "gram_batch_size": "the training batch size, as the reference (pacman-ctm/NESS "
        "main_ness_cifar100_sgd.py:635)",
        "route": "clbench's choice: the iterates of the paper's W + A B^T, through whichever "
        "route costs fewer multiplications (docs/methods.md, NESS)",
    }

    def __post_init__(self) -> None:
        require(0 <= self.eps1 <= 1, f"ness.eps1={self.eps1} must lie in [0, 1]")
        require(self.rho >= 0, f"ness.rho={self.rho} must be >= 0")
        require(
            self.gram_batch_size is None or self.gram_batch_size >= 1,
            f"ness.gram_batch_size={self.gram_batch_size} must be >= 1 (or none)",
        )


def null_space_basis(gram: Tensor, eps1: float) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Steps 3-4: B (d x r, float64), its complement (d x (d - r): the other eigenvectors) and the
    spectrum figures of the bound (module docstring)."""
    require(0 <= eps1 <= 1, f"eps1={eps1} must lie in [0, 1]")
    U, sigma = gram_eigh(gram)  # clamped at 0, descending
    eps_tol = eps1 * float(sigma.sum())
    null = sigma <= eps_tol
    r = int(null.sum())
    basis, complement = U[:, U.shape[1] - r :], U[:, : U.shape[1] - r]
    stats = {
        "rank": r,
        "sigma_sum": float(sigma.sum()),
        "null_energy": float(sigma[null].square().sum()),
    }
    return basis, complement, stats


def direct_is_cheaper(layer: nn.Module, r: int, rows: int) -> bool:
    """Whether training W directly costs fewer multiplications per step than the adapter, for a
    Linear layer (out x d) and batches of `rows`: the direct route projects the weight gradient
    through the d - r complement directions on its cheaper side, 2 min(rows, out) d (d - r); the
    factored adapter adds B^T x, A (B^T x) and their backward, about 3 rows r (d + out)."""
    if not projects_inputs(layer):
        return False
    out, d = layer.weight.shape
    return 2 * min(rows, out) * d * (d - r) < 3 * rows * r * (d + out)


@dataclass
class DirectLayer:
    """A layer whose weight W trains directly, its gradient kept in span(B); `start` is W at the
    start of the task, so that the weight decay acts on W - start, as it acts on A."""

    weight: nn.Parameter
    start: Tensor
    rank: int


class NESSPlugin(StrategyPlugin):
    """Builds the null-space adapters at each task boundary (module docstring)."""

    def __init__(self, params: NESSParams) -> None:
        super().__init__()
        self.params = params
        self.past_data: list[Dataset] = []
        self.grams: dict[str, Tensor] = {}
        self.spectra: dict[str, dict[str, float]] = {}
        self.routes: dict[str, str] = {}
        self.direct: dict[str, DirectLayer] = {}
        self.weight_decay = 0.0
        self.adapting = False  # whether the task being trained trains adapters (task 2 on)

    def _accumulate(self, strategy, datasets: list[Dataset]) -> dict[str, Tensor]:
        batch_size = self.params.gram_batch_size or strategy.train_mb_size
        return layer_grams(strategy, projected_layers(strategy.model), datasets, batch_size)

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = self.task_index(strategy)
        self.adapting = task > 0
        self.weight_decay = strategy.protocol.weight_decay  # applied to W - start, direct route
        if task == 0:
            return
        model = strategy.model
        merge_adapters(model)
        if self.params.source == "raw":
            grams = self._accumulate(strategy, self.past_data)
        else:
            grams = self.grams
        for p in model.parameters():
            p.requires_grad_(False)
        if len(model.heads) > 1:
            model.heads[task].requires_grad_(True)
        self.spectra, self.routes, self.direct = {}, {}, {}
        for name, layer in projected_layers(model).items():
            basis, complement, self.spectra[name] = null_space_basis(grams[name], self.params.eps1)
            r = basis.shape[1]
            if r == 0:
                continue
            direct = self.params.route == "direct" and projects_inputs(layer)
            if self.params.route == "auto":
                direct = direct_is_cheaper(layer, r, strategy.train_mb_size)
            self.routes[name] = "direct" if direct else "factored"
            if direct:
                assert isinstance(layer, nn.Linear)  # direct: projects_inputs(layer) held
                weight = cast(nn.Parameter, layer.weight)
                weight.requires_grad_(True)
                self.direct[name] = DirectLayer(weight, weight.detach().clone(), r)
                project_inputs(layer, Projection.of(complement, None, like=weight))
            else:
                add_adapter(layer, basis)

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.adapting:  # BatchNorm is frozen after the first task, running statistics included
            freeze_batchnorm_statistics(strategy.model)

    def decay_exempt(self) -> list[Tensor]:
        """The directly trained weights: their decay acts on W - start (`after_backward`)."""
        return [layer.weight for layer in self.direct.values()]

    def count_trainable(self, model: nn.Module) -> int:
        """Free parameters: a directly trained layer counts out x r, as its adapter would."""
        direct = {id(layer.weight) for layer in self.direct.values()}
        free = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in direct)
        return free + sum(layer.weight.shape[0] * layer.rank for layer in self.direct.values())

    def after_backward(self, strategy, **kwargs) -> None:
        if self.weight_decay and self.direct:
            with torch.no_grad():  # the gradient is in span(B) already, and so is W - start
                for layer in self.direct.values():
                    if layer.weight.grad is not None:
                        layer.weight.grad.add_(layer.weight - layer.start, alpha=self.weight_decay)
        if not self.adapting and self.params.optimizer == "sam":

            def loss() -> Tensor:
                output = task_forward(strategy.model, strategy.mb_x, strategy.mb_task_id)
                return strategy._criterion(output, strategy.mb_y)

            sam_gradient(strategy.model, self.params.rho, loss)

    def after_training_exp(self, strategy, **kwargs) -> None:
        for layer in projected_layers(strategy.model).values():
            stop_projecting_inputs(layer)
        dataset = strategy.experience.dataset
        if self.params.source == "raw":
            self.past_data.append(dataset)
        else:
            for name, gram in self._accumulate(strategy, [dataset]).items():
                self.grams[name] = self.grams[name] + gram if name in self.grams else gram

    def kept(self) -> Iterable[Tensor | Dataset]:
        """Every past training set (`raw`) or the summed Gram matrices (`gram`)."""
        return [*self.past_data, *self.grams.values()]

    def task_report(self) -> TaskReport:
        """Per layer: the null-space rank r (none on the first task), sum(sigma) and the null
        energy, and the route each adapted layer trained by."""
        ranks = {name: int(spectrum["rank"]) for name, spectrum in self.spectra.items()}
        return TaskReport(
            subspaces={NULL_SPACE_RANK: ranks},
            details={"null_space": self.spectra, "ness_routes": dict(self.routes)},
        )


@describe("NESS", family="null space")
def ness(model: nn.Module, params: NESSParams) -> StrategyBuild:
    """NESS: after the first task, each layer learns only W + A B^T with B the null space of past
    inputs."""
    return StrategyBuild(plugins=[NESSPlugin(params)])
