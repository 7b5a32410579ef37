"""The training protocol of a run (docs/methods.md, "The protocol shared by the GPM family"): its
settings (`ProtocolParams`) and the optimizer they describe (`make_optimizer`). The template builds
a fresh optimizer for every task (`clbench.template`); `clbench.schedule` runs the per-task
schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from clbench.params import require


@dataclass(frozen=True)
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
    eval_every: continual evaluation (`clbench.continual`): every this many training iterations,
    and when each task ends, the accuracy on every task trained so far, on a fixed seeded subset
    of at most `eval_samples` samples a task of the split `evaluate_on` names; 0 (off): the
    accuracy matrix only, and training runs exactly as without the option.
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
    eval_every: int = 0
    eval_samples: int = 500

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
        "eval_every": "off: evaluated when tasks end only, as every reference script",
        "eval_samples": "clbench's choice: 500 samples a task keep an evaluation cheap "
        "enough to repeat every few iterations",
    }

    def __post_init__(self) -> None:
        for name in (
            "epochs",
            "batch_size",
            "eval_batch_size",
            "patience",
            "eval_passes",
            "eval_samples",
        ):
            value = getattr(self, name)
            require(value >= 1, f"protocol.{name}={value} must be a whole number >= 1")
        require(
            self.eval_every >= 0,
            f"protocol.eval_every={self.eval_every} must be a whole number >= 0 (0: off)",
        )
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
    groups: list[dict[str, Any]] = [
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
