"""Synaptic intelligence (Zenke, Poole & Ganguli, ICML 2017; docs/methods.md, SI).

Per parameter k, along the training trajectory of task mu (the paper's Section 3):
- the path integral omega_k = -sum over steps of g_k * delta_theta_k, with g the gradient of the
  task's own loss (without the penalty, as the paper's surrogate is defined) and delta_theta the
  step the optimizer actually took;
- at the end of the task the importance grows by omega_k / (Delta_k^2 + xi), with
  Delta_k = theta_k(end of mu) - theta_k(start of mu), and omega is reset;
- while training later tasks the loss gains c * sum_k Omega_k (theta_k - theta*_k)^2, theta* the
  weights at the end of the previous task.

The importances are not clipped: Avalanche's plugin caps them at 0.001, which at the paper's
c = 0.1 makes its penalty vanish (its runs equalled fine-tuning's). The task gradient is read
without a second backward pass: the penalty's gradient 2 c Omega (theta - theta*) is subtracted
from the gradient of the total loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class SIParams:
    """si_lambda: strength c of the surrogate penalty (the paper's split-MNIST c = 0.1).
    eps: damping xi of the importance denominator (the paper's 1e-3)."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"si_lambda": Range(0.01, 100.0, log=True)}

    si_lambda: float = 0.1
    eps: float = 1e-3

    def __post_init__(self) -> None:
        require(self.si_lambda >= 0, f"si.si_lambda={self.si_lambda} must be >= 0")
        require(self.eps > 0, f"si.eps={self.eps} must be > 0")


class SynapticIntelligence(StrategyPlugin):
    """The path-integral importances and their penalty (module docstring)."""

    def __init__(self, params: SIParams) -> None:
        super().__init__()
        self.params = params
        self.importance: dict[str, Tensor] = {}  # Omega, summed over finished tasks
        self.anchor: dict[str, Tensor] = {}  # theta*, the weights at the end of the last task
        self.path: dict[str, Tensor] = {}  # omega of the current task
        self.start: dict[str, Tensor] = {}  # the weights when the current task began
        self.before_step: dict[str, tuple[Tensor, Tensor]] = {}  # (task gradient, weights)

    @staticmethod
    def _parameters(model: nn.Module) -> dict[str, nn.Parameter]:
        return {name: p for name, p in model.named_parameters() if p.requires_grad}

    def before_training_exp(self, strategy, **kwargs) -> None:
        params = self._parameters(strategy.model)
        self.start = {name: p.detach().clone() for name, p in params.items()}
        self.path = {name: torch.zeros_like(p) for name, p in params.items()}

    def before_backward(self, strategy, **kwargs) -> None:
        if not self.importance:
            return
        penalty = sum(
            (self.importance[name] * (p - self.anchor[name]).square()).sum()
            for name, p in self._parameters(strategy.model).items()
            if name in self.importance
        )
        strategy.loss = strategy.loss + self.params.si_lambda * penalty

    @torch.no_grad()
    def before_update(self, strategy, **kwargs) -> None:
        self.before_step = {}
        for name, p in self._parameters(strategy.model).items():
            if p.grad is None or name not in self.path:
                continue
            grad = p.grad.detach().clone()
            if name in self.importance:  # the penalty's own gradient is not the task's
                grad -= 2 * self.params.si_lambda * self.importance[name] * (p - self.anchor[name])
            self.before_step[name] = (grad, p.detach().clone())

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        params = self._parameters(strategy.model)
        for name, (grad, weights) in self.before_step.items():
            self.path[name] -= grad * (params[name] - weights)

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        for name, p in self._parameters(strategy.model).items():
            if name not in self.path:
                continue
            change = p.detach() - self.start[name]
            gained = self.path[name] / (change.square() + self.params.eps)
            previous = self.importance.get(name)
            self.importance[name] = gained if previous is None else previous + gained
            self.anchor[name] = p.detach().clone()
        self.path, self.start, self.before_step = {}, {}, {}

    def kept(self) -> Iterable[Tensor]:
        """The importances and the anchor weights."""
        return [*self.importance.values(), *self.anchor.values()]


@describe("SI", family="regularisation")
def si(model: nn.Module, params: SIParams) -> StrategyBuild:
    """SI: a penalty weighted by each parameter's path-integral contribution to past losses."""
    return StrategyBuild(plugins=[SynapticIntelligence(params)])
