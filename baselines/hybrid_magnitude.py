"""Hybrid update magnitude: this project's interpretation of He, Bai & Yang, "Exploring the Impact
of Parameter Update Magnitude on Forgetting and Generalization of Continual Learning" (arXiv
2602.20796), whose method is public only through its abstract (docs/methods.md).

The abstract frames forgetting as task-specific drift in parameter space, with frozen training and
initialised training as the two ends of the update magnitude, and a hybrid that adapts the
magnitude from gradient directions. Here: after every finished task, the reference direction of
each shared parameter tensor grows by the unit mean gradient of that task's loss (on
`reference_samples` of its training samples, eval mode). On later tasks, every optimizer step of
a shared tensor is scaled by alpha in [alpha_min, 1], from the cosine c between the new gradient
and the reference:
    hard: alpha = 1 if c >= tau else alpha_min;
    soft: alpha = alpha_min + (1 - alpha_min) (1 + c) / 2.
A positive c means the step also lowers the past tasks' loss to first order, so it is taken in
full. The scale multiplies the parameter's actual change after the optimizer, so it holds under
momentum; with `granularity = "element"` each element uses the sign agreement of its gradient and
reference as c. Limits (tested step for step): alpha_min = 1 is fine-tuning; tau = inf with
alpha_min = 0 is frozen training. Task heads always take full steps; a single shared head is a
shared tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from clbench.params import require
from clbench.strategies import StrategyBuild
from clbench.strategies.contract import StrategyPlugin, TaskReport
from clbench.strategies.past_directions import PastDirections, cosine, shared_parameters
from clbench.strategy_info import describe
from clbench.tuning.space import Dimension, Range


@dataclass
class HybridMagnitudeParams:
    """alpha_min: the smallest step scale (1: fine-tuning). rule: `hard` or `soft` (module
    docstring). tau: the hard rule's cosine threshold (inf with alpha_min 0: frozen training).
    granularity: one cosine per `tensor`, or per `element` (sign agreement).
    reference_samples: samples of each finished task whose mean gradient joins the reference."""

    SEARCH_SPACE: ClassVar[dict[str, Dimension]] = {
        "alpha_min": Range(0.0, 1.0),
        "tau": Range(-1.0, 1.0),
    }

    alpha_min: float = 0.1
    rule: Literal["hard", "soft"] = "hard"
    tau: float = 0.0
    granularity: Literal["tensor", "element"] = "tensor"
    reference_samples: int = 256

    def __post_init__(self) -> None:
        require(
            0 <= self.alpha_min <= 1,
            f"hybrid-magnitude.alpha_min={self.alpha_min} must lie in [0, 1]",
        )
        require(self.reference_samples >= 1, "hybrid-magnitude.reference_samples must be >= 1")


class MagnitudeControl(StrategyPlugin):
    """Scales each shared tensor's step by the rule of the module docstring."""

    def __init__(self, params: HybridMagnitudeParams) -> None:
        super().__init__()
        self.params = params
        self.past = PastDirections(params.reference_samples)
        self.damped = 0
        self.decisions = 0
        self._pending: dict[str, tuple[Tensor, Tensor]] = {}

    def _scale(self, grad: Tensor, reference: Tensor) -> Tensor:
        p = self.params
        if p.granularity == "tensor":
            cos = cosine(grad, reference)
        else:
            cos = torch.sign(grad * reference)
        if p.rule == "soft":
            return p.alpha_min + (1 - p.alpha_min) * (1 + cos) / 2
        full = cos >= p.tau if not math.isinf(p.tau) else torch.zeros_like(cos, dtype=torch.bool)
        return torch.where(full, torch.ones_like(cos), torch.full_like(cos, p.alpha_min))

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.damped = self.decisions = 0

    def before_update(self, strategy, **kwargs) -> None:
        self._pending = {}
        if self.task_index(strategy) == 0:
            return
        for name, p in shared_parameters(strategy.model).items():
            if p.grad is None or name not in self.past.reference:
                continue
            alpha = self._scale(p.grad, self.past.reference[name])
            self.decisions += alpha.numel()
            self.damped += int((alpha < 1).sum())
            if bool((alpha < 1).any()):
                self._pending[name] = (alpha, p.detach().clone())

    @torch.no_grad()
    def after_update(self, strategy, **kwargs) -> None:
        params = shared_parameters(strategy.model)
        for name, (alpha, before) in self._pending.items():
            p = params[name]
            moved = before + alpha * (p - before)
            p.copy_(torch.where(alpha == 1, p, torch.where(alpha == 0, before, moved)))

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.past.add_finished_task(strategy)

    def kept(self) -> Iterable[Tensor]:
        return self.past.reference.values()

    def task_report(self) -> TaskReport:
        """Share of the shared tensors' (or elements') steps that were scaled below 1."""
        damped = self.damped / self.decisions if self.decisions else 0.0
        return TaskReport(details={"damped_fraction": damped})


@describe("Hybrid (magnitude)", family="update magnitude")
def hybrid_magnitude(model: nn.Module, params: HybridMagnitudeParams) -> StrategyBuild:
    """Hybrid update magnitude (this project's reading of the paper): damp steps that disagree
    with the past tasks' gradient directions."""
    return StrategyBuild(plugins=[MagnitudeControl(params)])
