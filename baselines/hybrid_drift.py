"""Hybrid drift budget: this project's second reading of He, Bai & Yang, "Exploring the Impact of
Parameter Update Magnitude on Forgetting and Generalization of Continual Learning" (arXiv
2602.20796), whose method is public only through its abstract (docs/methods.md, "Parameter-update
magnitude", second reading).

The abstract derives an optimal update magnitude under a constraint on parameter drift, with
frozen training and initialised training at its two ends. Read here as: while task t trains,
every shared tensor's drift D = theta - theta*_{t-1} from its value at the start of the task is
kept inside the ball ||D|| <= rho. After each optimizer step a drift that left the ball is scaled
back onto its boundary (the projected-gradient solution of minimising the task's loss under the
constraint). rho = budget * ||theta*_{t-1}|| * (1 + c) / 2 per tensor, adapted from gradient
directions: c is the cosine, at the start of the task, between the new task's gradient and the
past tasks' reference direction (`clbench.strategies.past_directions`), so a tensor whose new
gradient conflicts with the past tasks' gets a small budget and one that agrees a large one.
Limits (tested step for step): budget = 0 is frozen training, budget = inf is fine-tuning. The
first task trains without a constraint; task heads are never constrained; a single shared head is
a shared tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin, TaskReport
from clbench.strategies.past_directions import PastDirections, cosine, shared_parameters
from clbench.strategies.task_data import task_loss_backward
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class HybridDriftParams:
    """budget: the largest drift of a shared tensor within a task, relative to its norm at the
    task's start (0: frozen training, inf: fine-tuning); chosen on split-digits validation data
    (docs/studies.md). reference_samples: samples of a task whose mean gradient joins the past
    tasks' reference after it, and that measure the new task's gradient at its start."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {"budget": Range(0.01, 3.0, log=True)}

    budget: float = 0.3
    reference_samples: int = 256

    def __post_init__(self) -> None:
        require(self.budget >= 0, f"hybrid-drift.budget={self.budget} must be >= 0 (inf allowed)")
        require(self.reference_samples >= 1, "hybrid-drift.reference_samples must be >= 1")


@dataclass
class Ball:
    """One shared tensor's constraint for the current task: the tensor, its value at the task's
    start, the radius, and the radius relative to that value's norm (budget * (1 + c) / 2)."""

    param: nn.Parameter
    anchor: Tensor
    radius: float
    relative: float


class DriftBudget(StrategyPlugin):
    """Keeps each shared tensor's drift within the task inside its ball (module docstring)."""

    def __init__(self, params: HybridDriftParams) -> None:
        super().__init__()
        self.params = params
        self.past = PastDirections(params.reference_samples)
        self.balls: dict[str, Ball] = {}
        self.clipped = 0
        self.checks = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        """The balls of this task, found once (the shared tensors do not change within it)."""
        self.balls = {}
        self.clipped = self.checks = 0
        if self.task_index(strategy) == 0 or math.isinf(self.params.budget):
            return
        model = strategy.model
        task_loss_backward(strategy, self.params.reference_samples, self.past.generator)
        for name, p in shared_parameters(model).items():
            if p.grad is None or name not in self.past.reference:
                continue
            agreement = (1 + float(cosine(p.grad, self.past.reference[name]))) / 2
            relative = self.params.budget * agreement
            anchor = p.detach().clone()
            self.balls[name] = Ball(p, anchor, relative * float(anchor.norm()), relative)
        model.zero_grad()

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        for ball in self.balls.values():
            drift = ball.param - ball.anchor
            norm = float(drift.norm())
            self.checks += 1
            if norm > ball.radius:
                self.clipped += 1
                scaled = ball.anchor + drift * (ball.radius / norm)
                ball.param.copy_(scaled if ball.radius > 0 else ball.anchor)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.past.add_finished_task(strategy)

    def kept(self) -> Iterable[Tensor]:
        return [*self.past.reference.values(), *(b.anchor for b in self.balls.values())]

    def task_report(self) -> TaskReport:
        """Share of the shared tensors' steps that left their ball, and the mean radius relative
        to the tensors' norms (budget * (1 + c) / 2 averaged over tensors of nonzero norm)."""
        relative = [b.relative for b in self.balls.values() if b.anchor.any()]
        return TaskReport(
            details={
                "clipped_fraction": self.clipped / self.checks if self.checks else 0.0,
                "mean_relative_radius": sum(relative) / len(relative) if relative else 0.0,
            }
        )


@describe("Hybrid (drift)", family="update magnitude")
def hybrid_drift(model: nn.Module, params: HybridDriftParams) -> StrategyBuild:
    """Hybrid drift budget (this project's second reading of the update-magnitude paper): each
    task's drift per shared tensor stays within a ball sized by its gradient's agreement with the
    past tasks'."""
    return StrategyBuild(plugins=[DriftBudget(params)])
