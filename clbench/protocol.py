"""The training protocol shared by the GPM family (docs/methods.md, "The protocol shared by the
GPM family"), as a plugin.

Per task: a fresh optimizer at the base learning rate over exactly the tensors that are trainable
when training starts; after every epoch the validation loss. Under the `plateau` schedule an
improvement keeps a copy of the weights and resets the patience; otherwise the patience drops, and
at zero the learning rate is divided by `lr_factor` (the task stops once it falls below `lr_min`)
and the patience resets. Under the `fixed` schedule (the PMNIST scripts) the rate stays and every
task trains `epochs` epochs. At the end of the task, with `restore = "best"`, the best-validation
weights are restored (with `last`, the last epoch's stay), before any strategy updates its memory
in `after_training_exp`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.models import avalanche_forward
from torch.utils.data import Dataset

from clbench.data.loading import sequential_loader
from clbench.models import evaluation_mode
from clbench.params import require


@dataclass
class ProtocolParams:
    """Training settings of a run. Defaults: the CIFAR-100 protocol of GPM (docs/methods.md,
    protocol table).

    epochs: maximum epochs per task. batch_size / eval_batch_size: mini-batch sizes for training and
    for validation and test (test batches are shuffled: with batch-statistics BatchNorm the result
    depends on them). lr, lr_min, patience, lr_factor: the validation schedule. pc_valid: share of
    each task's training data held out for validation. optimizer: `sgd` (the GPM family, NESS)
    or `adam` (Adam-NSCL; betas (0.9, 0.999), weight decay as an L2 term of the gradient, no
    momentum setting). momentum, weight_decay: of the optimizer (0 in the GPM family).
    evaluate_on: the split the accuracy matrix is measured on, `test` or `validation` (each task's
    held-out share of its training data: for choosing hyperparameters without seeing test data).
    schedule: `plateau` (lr divided after `patience` epochs without a better validation loss, the
    task stopped below `lr_min`) or `fixed` (the lr stays, every task trains `epochs` epochs: the
    PMNIST scripts of GPM, TRGP and DFGP).
    restore: at a task's end, `best` restores the weights of the best validation loss, `last`
    keeps the last epoch's (the PMNIST scripts).
    validation_split: `random` (seeded) or `first` (the first pc_valid share in stored order, the
    PMNIST loaders); `clbench.data.benchmark.split_validation`.
    eval_passes: each test accuracy is the mean over this many passes over the shuffled test set
    (with batch-statistics BatchNorm, passes differ: TRGP averages 10 on CIFAR-100, 5 on
    5-datasets and MiniImageNet).
    data_order: how the seed draws a task's content where the benchmark draws it (MiniImageNet's
    classes, PMNIST's permutations): `reference`, as the authors' loaders, or `torch`.
    head_weight_decay: the weight decay of the task heads (None: `weight_decay`; Adam-NSCL's
    reference gives them none).
    """

    epochs: int = 200
    batch_size: int = 64
    eval_batch_size: int = 64
    lr: float = 0.01
    lr_min: float = 1e-5
    patience: int = 6
    lr_factor: float = 2.0
    pc_valid: float = 0.05
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    evaluate_on: Literal["test", "validation"] = "test"
    schedule: Literal["plateau", "fixed"] = "plateau"
    restore: Literal["best", "last"] = "best"
    validation_split: Literal["random", "first"] = "random"
    eval_passes: int = 1
    data_order: Literal["reference", "torch"] = "reference"
    head_weight_decay: float | None = None

    SOURCES: ClassVar[dict[str, str]] = {
        **dict.fromkeys(
            ("optimizer", "momentum", "weight_decay"),
            "plain SGD, as the GPM family's scripts (sahagobinda/GPM main_cifar100.py:325)",
        ),
        "evaluate_on": "the test split, where every reference script measures its accuracy matrix",
        "schedule": "the GPM family's validation schedule "
        "(sahagobinda/GPM main_cifar100.py:339-353)",
        "restore": "the best validation loss's weights, as the GPM family's image scripts "
        "(sahagobinda/GPM main_cifar100.py:355, 401)",
        "validation_split": "a seeded random share, as the GPM family's image loaders "
        "(sahagobinda/GPM dataloader/cifar100.py:70), drawn by clbench with torch",
        "eval_passes": "one pass, as GPM, SGP, DFGP and NESS "
        "(sahagobinda/GPM main_cifar100.py:414)",
        "data_order": "as the authors' loaders draw a task's content, where a benchmark draws it",
        "head_weight_decay": "unset: the heads decay as every other tensor",
    }

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "patience", "eval_passes"):
            value = getattr(self, name)
            require(value >= 1, f"protocol.{name}={value} must be a whole number >= 1")
        require(self.lr > 0, f"protocol.lr={self.lr} must be > 0")
        require(self.lr_min >= 0, f"protocol.lr_min={self.lr_min} must be >= 0")
        require(self.lr_factor > 1, f"protocol.lr_factor={self.lr_factor} must be > 1")
        require(0 <= self.pc_valid < 1, f"protocol.pc_valid={self.pc_valid} must lie in [0, 1)")
        require(0 <= self.momentum < 1, f"protocol.momentum={self.momentum} must lie in [0, 1)")
        require(self.weight_decay >= 0, f"protocol.weight_decay={self.weight_decay} must be >= 0")
        require(
            self.head_weight_decay is None or self.head_weight_decay >= 0,
            f"protocol.head_weight_decay={self.head_weight_decay} must be >= 0 (or none)",
        )
        require(
            self.evaluate_on == "test" or self.pc_valid > 0,
            "protocol.evaluate_on=validation needs a validation split; set protocol.pc_valid > 0",
        )
        require(
            self.optimizer == "sgd" or self.momentum == 0,
            f"protocol.momentum={self.momentum}: Adam has no momentum setting; use 0 with "
            "protocol.optimizer=adam",
        )


def rounded(value: float) -> float:
    """A product of decimal settings without its binary noise (0.1 * 0.01 -> 0.001)."""
    return float(f"{value:.12g}")


def effective_step(protocol: ProtocolParams) -> float:
    """The step size SGD takes in the long run, lr / (1 - momentum): momentum 0.9 multiplies the
    step by 10, so a strategy trained with momentum needs lr / 10 to move as fast as the others.
    (For Adam, whose steps are normalised, lr is the step size and no comparison with SGD's holds:
    its presets give a reason.)"""
    return rounded(protocol.lr / (1 - protocol.momentum))


def make_optimizer(
    params: ProtocolParams,
    trainable: list,
    lr: float,
    decayed_elsewhere: list | None = None,
    heads: list | None = None,
) -> torch.optim.Optimizer:
    """A fresh optimizer of the protocol's kind over `trainable` at `lr`: the tensors in
    `decayed_elsewhere` (whose strategy applies the weight decay itself) get none from it, the
    task heads' tensors (`heads`) get `head_weight_decay` where it is set."""
    exempt = {id(p) for p in decayed_elsewhere or []}
    head_ids = {id(p) for p in heads or []} if params.head_weight_decay is not None else set()
    groups = [
        {"params": [p for p in trainable if id(p) not in exempt | head_ids]},
        {
            "params": [p for p in trainable if id(p) in head_ids - exempt],
            "weight_decay": params.head_weight_decay,
        },
        {"params": [p for p in trainable if id(p) in exempt], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if params.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=params.weight_decay)
    return torch.optim.SGD(
        groups, lr=lr, momentum=params.momentum, weight_decay=params.weight_decay
    )


class ValidationSchedule(SupervisedPlugin):
    """The per-task schedule, early stop and restore of the protocol (module docstring)."""

    def __init__(self, params: ProtocolParams) -> None:
        super().__init__()
        self.params = params
        self.validation: list[Dataset] = []
        self.task = 0
        self.trainable_params = 0
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

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.epochs_run > 0:
            return
        # Built here, after every plugin's before_training_exp, so that parameters added or frozen
        # at the task boundary are exactly the ones optimised.
        trainable = [p for p in strategy.model.parameters() if p.requires_grad]
        counts = [
            plugin.count_trainable(strategy.model)
            for plugin in strategy.plugins
            if hasattr(plugin, "count_trainable")
        ]
        self.trainable_params = counts[0] if counts else sum(p.numel() for p in trainable)
        decayed_elsewhere = [
            tensor
            for plugin in strategy.plugins
            if hasattr(plugin, "decays_itself")
            for tensor in plugin.decays_itself(self.params.weight_decay)
        ]
        heads = [p for name, p in strategy.model.named_parameters() if name.startswith("heads.")]
        strategy.optimizer = make_optimizer(
            self.params, trainable, self.lr, decayed_elsewhere, heads
        )

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
            total += F.cross_entropy(avalanche_forward(model, x, t), y, reduction="sum").item()
            count += len(y)
    return total / max(count, 1)
