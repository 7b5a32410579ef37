"""The per-task schedule of the protocol (docs/methods.md, "The protocol shared by the GPM
family"), as a plugin of the harness.

After every epoch the validation loss. Under the `plateau` schedule an improvement keeps a copy of
the weights and resets the patience; otherwise the patience drops, and at zero the learning rate
of the task's optimizer (built by the template, `clbench.template`) is divided by `lr_factor` (the
task stops once it falls below `lr_min`) and the patience resets. Under the `fixed` schedule (the
PMNIST scripts) the rate stays and every task trains `epochs` epochs. At the end of the task, with
`restore = "best"`, the best-validation weights are restored (with `last`, the last epoch's stay),
before any strategy updates its memory in `after_training_exp`.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from clbench.data.loading import sequential_loader
from clbench.models import evaluation_mode
from clbench.protocol import ProtocolParams
from clbench.strategies.task_data import task_forward


class ValidationSchedule:
    """The per-task schedule, early stop and restore of the protocol (module docstring)."""

    def __init__(self, params: ProtocolParams) -> None:
        self.params = params
        self.validation: list[Dataset] = []
        self.task = 0
        self.epochs_run = 0
        self._reset()

    def _reset(self) -> None:
        self.lr = self.params.lr
        self.patience = self.params.patience
        self.best_loss = math.inf
        self.last_loss = math.nan  # the validation loss after the last epoch (training logs)
        self.best_state: dict | None = None
        self.epochs_run = 0

    def start_task(self, task: int, validation: list[Dataset]) -> None:
        """Called by the runner before training task `task` with its validation data."""
        self.task = task
        self.validation = validation
        self._reset()

    def after_training_epoch(self, strategy, **kwargs) -> None:
        loss = validation_loss(strategy, self.validation, self.params.eval_batch_size)
        self.last_loss = loss
        self.epochs_run += 1
        stop = False
        if loss < self.best_loss:
            self.best_loss = loss
            if self.params.restore == "best":
                self.best_state = copy.deepcopy(strategy.model.state_dict())
            self.patience = self.params.patience
        elif self.params.schedule == "plateau":
            self.patience -= 1
            if self.patience <= 0:
                self.lr /= self.params.lr_factor
                stop = self.lr < self.params.lr_min
                self.patience = self.params.patience
                for group in strategy.optimizer.param_groups:
                    group["lr"] = self.lr
        if stop:
            strategy.stop_training()
        if (stop or self.epochs_run == self.params.epochs) and self.params.restore == "best":
            strategy.model.load_state_dict(self.best_state)


@torch.no_grad()
def validation_loss(strategy, datasets: list[Dataset], batch_size: int) -> float:
    """Mean cross-entropy of the model in eval mode over the validation datasets."""
    model = strategy.model
    total, count = 0.0, 0
    loader = sequential_loader(datasets, batch_size)
    with evaluation_mode(model):
        for x, y, t in loader:
            x, y, t = x.to(strategy.device), y.to(strategy.device), t.to(strategy.device)
            total += F.cross_entropy(task_forward(model, x, t), y, reduction="sum").item()
            count += len(y)
    return total / max(count, 1)
