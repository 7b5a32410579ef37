"""Divergence checks: a run whose loss or weights blow up stops with `TrainingDiverged`, naming
the task, epoch and step, instead of training on at chance accuracy.

`DivergenceWatch` checks the loss of every step (every strategy's terms included): it must be
finite and at most `LOSS_CEILING`, since a diverging run's loss can stay finite (at lr 1e3 on
split-digits, NESS's and Adam-NSCL's do, and their weights too). After every epoch it checks that
the Euclidean norm of the model's weights is finite, in their own precision: float32 weights whose
norm exceeds float32's range fail even when each weight is finite (naive's at lr 1e3). Per step
that norm would cost a noticeable share of a small model's step (docs/performance.md), and a
weight that blows up shows in the next step's loss. At
every task's end the runner checks the task's parameter distance (`check_distance`), which
measures the effective weights (NESS's W + A B^T).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from clbench.errors import TrainingDiverged

LOSS_CEILING = 1e6
"""A loss above this is divergence even while finite: cross-entropy starts near ln(classes) and
a training run's regularising terms stay of that order, while a diverging run's loss passes 1e6
within a few steps (split-digits at lr 1e3: 2e20 for naive, 4e11 for NESS, 2e12 for Adam-NSCL)."""


def _diverged(what: str, where: str, lr: float) -> TrainingDiverged:
    return TrainingDiverged(f"{what} {where}: the run diverged (optimizer learning rate {lr:g})")


def _where(strategy, step: int) -> str:
    clock = strategy.clock
    return (
        f"at task {clock.train_exp_counter + 1}, epoch {clock.train_exp_epochs + 1}, "
        f"step {step} (counted from 1)"
    )


def _lr(strategy) -> float:
    return strategy.optimizer.param_groups[0]["lr"]


class DivergenceWatch(SupervisedPlugin):
    """Stops training at the first step whose loss diverges, or after the first epoch whose
    weights do (module docstring). It follows every strategy plugin, so that it sees their terms
    and their changes to the weights."""

    def before_backward(self, strategy, **kwargs) -> None:
        loss = strategy.loss.item()  # one read of the scalar; cheaper than a tensor isfinite
        if not math.isfinite(loss):
            what = f"non-finite loss ({loss})"
        elif loss > LOSS_CEILING:
            what = f"loss {loss:.3g} above {LOSS_CEILING:g}"
        else:
            return
        step = strategy.clock.train_epoch_iterations + 1
        raise _diverged(what, _where(strategy, step), _lr(strategy))

    def after_training_epoch(self, strategy, **kwargs) -> None:
        norm = torch.nn.utils.get_total_norm(strategy.model.parameters()).item()
        if not math.isfinite(norm):
            what = f"non-finite norm of the weights ({norm}) after the epoch's last step,"
            where = _where(strategy, strategy.clock.train_epoch_iterations)
            raise _diverged(what, where, _lr(strategy))


def check_distance(distance: dict[str, Any], task: int, epochs: int, lr: float) -> None:
    """Raise `TrainingDiverged` if the parameter distance of task `task` (from 0), which trained
    `epochs` epochs, lastly at learning rate `lr`, is not finite."""
    total = distance["total"]
    if not math.isfinite(total):
        where = f"at the end of task {task + 1}, epoch {epochs}, after its last step"
        raise _diverged(f"non-finite parameter distance ({total})", where, lr)
