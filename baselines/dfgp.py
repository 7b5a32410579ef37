"""Data- and weight-flatness gradient projection (Yang et al., 2023; docs/methods.md, DFGP).

Each training step, in the order of docs/methods.md:
1. lambda ~ Beta(alpha, alpha) per sample (clamped to [0, 1]) and a permutation pi of the batch;
   x_mix = (1 - lambda) x + lambda x_pi;
2. L = CE(f(x), y) + w [mean(lambda) CE(f(x_mix), y) + (1 - mean(lambda)) CE(f(x_mix), y_pi)],
   with mean(lambda) detached as the reference does (the data ascent's gradient flows through
   x_mix only);
3. backward; data ascent lambda <- clamp(lambda + data_step grad_lambda / ||grad_lambda||, 0, 1);
   weight ascent e = rho g / ||g|| over every parameter with a gradient;
4. L again at the perturbed weights with x_mix(lambda_adv) detached; backward; weights restored;
5. GPM's projection of that gradient (and BatchNorm's frozen after the first task), then plain SGD.
Steps 1-4 are this plugin (`before_backward`, `after_backward`); step 5 is the shared
`GradientProjection`, which runs after it. About 4 forward and 2 backward passes per step.
lambda and pi come from the plugin's own generator (seeded from the run's seed), so that DFGP
draws no numbers from the global stream that shuffles the data. Per-benchmark values are in
dfgp.toml beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.gpm import GPMMemory
from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin
from clbench.strategies.projection import GradientProjection, ProjectionParams
from clbench.strategies.sam import sam_gradient
from clbench.strategies.task_data import task_forward
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class DFGPParams(ProjectionParams):
    """DFGP's parameters: GPM's (`ProjectionParams`; DFGP keeps one constant threshold per run)
    plus
    alpha: Beta(alpha, alpha) of the mixing weights;
    mixup_weight: w of the mixup term;
    rho: the weight-ascent radius; data_step: the mixing weights' ascent step."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {
        "threshold": Range(0.9, 0.999),
        "rho": Range(0.005, 0.5, log=True),
    }

    threshold: tuple[float, ...] = (0.95,)
    threshold_increment: float = 0.0
    alpha: float = 20.0
    mixup_weight: float = 0.1
    rho: float = 0.05
    data_step: float = 0.05

    SOURCES: ClassVar[dict[str, str]] = {
        **ProjectionParams.SOURCES,
        "threshold": "DFGP's CIFAR-100 threshold (EnnengYang/DFGP main_dfgp_cifar100.py:363)",
        "threshold_increment": "DFGP keeps one threshold per run (EnnengYang/DFGP "
        "main_dfgp_cifar100.py:363)",
        "alpha": "DFGP's CIFAR-100 log (EnnengYang/DFGP logs/CIFAR100/log_20230305_110310.txt:3)",
        "mixup_weight": "DFGP's CIFAR-100 log (EnnengYang/DFGP "
        "logs/CIFAR100/log_20230305_110310.txt:3)",
        "rho": "SAM's default radius, which DFGP keeps (EnnengYang/DFGP flatness_minima.py:5)",
        "data_step": "DFGP's fixed ascent step (EnnengYang/DFGP main_dfgp_cifar100.py:157)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.alpha > 0, f"dfgp.alpha={self.alpha} must be > 0")
        require(self.mixup_weight >= 0, f"dfgp.mixup_weight={self.mixup_weight} must be >= 0")
        require(self.rho >= 0, f"dfgp.rho={self.rho} must be >= 0")
        require(self.data_step >= 0, f"dfgp.data_step={self.data_step} must be >= 0")


class FlatnessAscent(StrategyPlugin):
    """Steps 1-4 of the module docstring; it precedes the projection, which must see the
    gradient at the perturbed weights."""

    precedes = (GradientProjection,)

    def __init__(self, params: DFGPParams) -> None:
        super().__init__()
        self.params = params
        self.rng = np.random.default_rng(torch.initial_seed())
        self.lam: Tensor | None = None
        self.perm: Tensor | None = None

    def _mixed_loss(self, strategy, lam: Tensor) -> Tensor:
        x, y, t = strategy.mb_x, strategy.mb_y, strategy.mb_task_id
        shape = (-1,) + (1,) * (x.dim() - 1)
        x_mix = (1 - lam.view(shape)) * x + lam.view(shape) * x[self.perm]
        out = task_forward(strategy.model, x_mix, t)
        share = lam.detach().mean()  # the loss weights are constants, as the reference
        return share * F.cross_entropy(out, y) + (1 - share) * F.cross_entropy(out, y[self.perm])

    def before_backward(self, strategy, **kwargs) -> None:
        n = len(strategy.mb_y)
        draws = self.rng.beta(self.params.alpha, self.params.alpha, size=n)
        lam = torch.as_tensor(draws, dtype=strategy.mb_x.dtype, device=strategy.device)
        self.perm = torch.as_tensor(self.rng.permutation(n), device=strategy.device)
        self.lam = lam.clamp(0, 1).requires_grad_(True)
        strategy.loss = strategy.loss + self.params.mixup_weight * self._mixed_loss(
            strategy, self.lam
        )

    def after_backward(self, strategy, **kwargs) -> None:
        assert self.lam is not None  # set by before_backward
        lam = self.lam.detach()
        grad = self.lam.grad
        if grad is not None and float(grad.norm()) > 0:
            lam = (lam + self.params.data_step * grad / grad.norm()).clamp(0, 1)

        def loss_at_perturbed_weights() -> Tensor:
            out = task_forward(strategy.model, strategy.mb_x, strategy.mb_task_id)
            clean = F.cross_entropy(out, strategy.mb_y)
            return clean + self.params.mixup_weight * self._mixed_loss(strategy, lam)

        sam_gradient(strategy.model, self.params.rho, loss_at_perturbed_weights)


@describe("DFGP", family="projection")
def dfgp(model: nn.Module, params: DFGPParams) -> StrategyBuild:
    """DFGP: GPM trained on flat minima in data (adversarial mixup) and weights (SAM)."""
    return StrategyBuild(
        plugins=[
            FlatnessAscent(params),
            # projected after backward: the ascent reads the raw gradient of the first backward
            GradientProjection(GPMMemory(params), params, project_in_backward=False),
        ]
    )
