"""Benchmarks from your own data: tensors, numpy arrays or torchvision-style datasets.

A benchmark builder returns a `TaskSequence`; the harness turns it into the Avalanche scenario
(`clbench.data.benchmark.to_scenario`): it splits each task's training data into training and
validation (`protocol.pc_valid`, seeded by the run seed) and gives task k the task label k.
These helpers validate the data and fill in `TaskData` and `TaskSequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from clbench.data.benchmark import TaskData, TaskSequence
from clbench.errors import ConfigError


def _tensor(values: Any, what: str) -> Tensor:
    if isinstance(values, Tensor):
        return values
    if isinstance(values, np.ndarray):
        return torch.from_numpy(values)
    raise ConfigError(f"{what} is a {type(values).__name__}; give a torch tensor or numpy array")


def _inputs(values: Any, what: str) -> Tensor:
    x = _tensor(values, what)
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ConfigError(f"{what} has dtype {x.dtype}; give uint8 images or floats")
    if x.dim() < 2:
        raise ConfigError(f"{what} has shape {tuple(x.shape)}; give N x D or N x C x H x W")
    return x if x.dtype == torch.uint8 else x.float()


def _labels(values: Any, what: str, n: int) -> Tensor:
    y = _tensor(values, what)
    if y.dtype.is_floating_point or y.dim() != 1 or len(y) != n:
        raise ConfigError(f"{what} must be {n} integer labels, got {y.dtype} {tuple(y.shape)}")
    if n and int(y.min()) < 0:
        raise ConfigError(f"{what} holds the label {int(y.min())}; labels are 0..C-1 per task")
    return y.long()


def task_from_arrays(
    name: str,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TaskData:
    """One task from tensors or numpy arrays: inputs N x D or N x C x H x W (uint8 images are
    scaled to [0, 1], then normalised by the per-channel `mean`/`std` if given), labels 0..C-1."""
    x_tr, x_te = _inputs(x_train, f"{name}: x_train"), _inputs(x_test, f"{name}: x_test")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ConfigError(
            f"{name}: x_train samples are {tuple(x_tr.shape[1:])}, x_test's "
            f"{tuple(x_te.shape[1:])}; they must match"
        )
    if len(x_tr) == 0 or len(x_te) == 0:
        raise ConfigError(f"{name}: needs training and test samples")
    return TaskData(
        name=name,
        x_train=x_tr,
        y_train=_labels(y_train, f"{name}: y_train", len(x_tr)),
        x_test=x_te,
        y_test=_labels(y_test, f"{name}: y_test", len(x_te)),
        mean=None if mean is None else tuple(mean),
        std=None if std is None else tuple(std),
    )


def _stack(dataset: Any, what: str) -> tuple[Tensor, Tensor]:
    """All (input, label) pairs of a map-style dataset; PIL images become uint8 C x H x W."""
    from torchvision.transforms.functional import pil_to_tensor

    xs, ys = [], []
    for index in range(len(dataset)):
        x, y = dataset[index]
        if not isinstance(x, Tensor | np.ndarray):
            x = pil_to_tensor(x)  # a PIL image
        xs.append(_tensor(x, what))
        ys.append(int(y))
    if not xs:
        raise ConfigError(f"{what} is empty")
    return torch.stack(xs), torch.tensor(ys)


def task_from_datasets(
    name: str,
    train: Any,
    test: Any,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TaskData:
    """One task from two map-style datasets of (image, label) pairs, e.g. torchvision datasets
    without a transform (PIL images) or with `ToTensor` (floats), their labels 0..C-1."""
    x_train, y_train = _stack(train, f"{name}: train")
    x_test, y_test = _stack(test, f"{name}: test")
    return task_from_arrays(name, x_train, y_train, x_test, y_test, mean, std)


def task_sequence(tasks: Sequence[TaskData], multi_head: bool = True) -> TaskSequence:
    """Tasks in training order. Multi-head: one output head per task (task-incremental, the
    usual setting); single-head: one head shared by all tasks (as in PMNIST)."""
    if not tasks:
        raise ConfigError("a benchmark needs at least one task")
    shape = tasks[0].x_train.shape[1:]
    for task in tasks:
        if task.x_train.shape[1:] != shape:
            raise ConfigError(
                f"task {task.name} has samples of shape {tuple(task.x_train.shape[1:])}, "
                f"task {tasks[0].name} {tuple(shape)}; every task needs the same input shape"
            )
    classes = max(int(max(t.y_train.max(), t.y_test.max())) for t in tasks) + 1
    return TaskSequence(tasks=list(tasks), classes_per_task=classes, multi_head=multi_head)
