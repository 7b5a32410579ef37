"""Benchmark definitions and their conversion into task-incremental Avalanche scenarios.

A benchmark builder returns a `TaskSequence`: per task, training and test images with labels already
remapped to 0..C-1. The harness (not the builder) carves the validation split out of each task's
training data with the run's seed and `pc_valid`, attaches task labels and builds the scenario with
Avalanche's `dataset_benchmark` (its newer builders break multi-head models). Avalanche is
imported by `to_scenario` only, so that the registry and its builders load without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from clbench.errors import ConfigError

DataOrder = Literal["reference", "torch"]
ValidationSplit = Literal["random", "first"]


@dataclass(frozen=True)
class DataOptions:
    """Where a builder finds its files, whether it may download them, the run's seed, and how the
    seed draws a task's content where a benchmark draws it (`order`, `protocol.data_order`):
    `reference` as the authors' loaders draw it (numpy's legacy generator; see
    `reference_permutation`), `torch` with torch's generator (clbench's earlier draws)."""

    root: Path
    download: bool
    seed: int
    order: DataOrder = "reference"


@dataclass(frozen=True)
class TaskData:
    """One task: inputs (uint8 or float, N x C x H x W, or N x D when flattened), labels 0..C-1.

    uint8 images are scaled to [0, 1] on access; `mean`/`std` (per channel) then normalise them.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TaskSequence:
    """What a benchmark builder returns."""

    tasks: list[TaskData]
    classes_per_task: int
    multi_head: bool

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.tasks[0].x_train.shape[1:])


BenchmarkBuilder = Callable[[DataOptions], TaskSequence]


class ImageTensors(Dataset):
    """Images held as one tensor, converted to normalised float32 when read: one sample at a
    time (`dataset[i]`) or a batch of rows at once (`fetch`), with the same arithmetic."""

    def __init__(self, task: TaskData, x: Tensor, y: Tensor) -> None:
        self.x = x
        self.targets = y
        self._scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
        shape = (-1,) + (1,) * (x.dim() - 2)
        self._mean = None if task.mean is None else torch.tensor(task.mean).view(shape)
        self._std = None if task.std is None else torch.tensor(task.std).view(shape)

    def __len__(self) -> int:
        return len(self.targets)

    def _normalized(self, images: Tensor) -> Tensor:
        images = images.float()
        if self._scale != 1.0:  # float inputs are used as they are (x * 1.0 is x)
            images = images * self._scale
        if self._mean is not None and self._std is not None:  # set together (TaskData)
            images = (images - self._mean) / self._std
        return images

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self._normalized(self.x[index]), int(self.targets[index])

    def fetch(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Images and labels (int64) of `rows`, as one batch."""
        return (
            self._normalized(self.x.index_select(0, rows)),
            self.targets.index_select(0, rows).long(),
        )


def split_validation(
    n: int, pc_valid: float, seed: int, rule: ValidationSplit = "random"
) -> tuple[Tensor, Tensor]:
    """Indices of (train, validation) of a task's n training samples (`protocol.validation_split`).

    `random`: a seeded permutation, the last round(pc_valid n) samples (at least one) validate.
    `first`: the first int(pc_valid n) samples in stored order validate, the rest train in order,
    as the PMNIST loaders of GPM, TRGP and DFGP split (sahagobinda/GPM dataloader/pmnist.py:72-77,
    whose shuffle is commented out); `seed` is not used.
    """
    if not 0.0 <= pc_valid < 1.0:
        raise ConfigError(f"protocol.pc_valid={pc_valid} must lie in [0, 1)")
    if rule not in ("random", "first"):
        raise ConfigError(f"protocol.validation_split={rule!r} is not one of 'random', 'first'")
    if rule == "first":
        n_valid = int(pc_valid * n)
    else:
        n_valid = max(int(round(pc_valid * n)), 1) if pc_valid > 0 else 0
    if n_valid >= n:
        raise ConfigError(
            f"protocol.pc_valid={pc_valid} leaves no training sample in a task of {n}; "
            f"use a share below {(n - 1) / n:.4g}"
        )
    if rule == "first":
        return torch.arange(n_valid, n), torch.arange(n_valid)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n - n_valid], order[n - n_valid :]


def to_scenario(
    sequence: TaskSequence,
    pc_valid: float,
    seed: int,
    cumulative: bool = False,
    validation_split: ValidationSplit = "random",
):
    """Build the Avalanche scenario with `train_stream`, `valid_stream` and `test_stream`.

    Every experience carries its task label (task k has label k), also for single-head benchmarks,
    so that metrics and task-aware strategies always know which task a sample belongs to. With
    `cumulative`, training and validation experience t hold the union of tasks 1..t (joint
    training); the test stream stays one experience per task. `validation_split` is the rule of
    `split_validation` (task k's random split is seeded with seed + k).
    """
    from avalanche.benchmarks import dataset_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_classification_dataset

    from clbench.data.loading import with_sample_origin

    streams: dict[str, list] = {"train": [], "valid": [], "test": []}
    for task_id, task in enumerate(sequence.tasks):
        train_idx, valid_idx = split_validation(
            len(task.y_train), pc_valid, seed + task_id, validation_split
        )
        parts = {
            "train": ImageTensors(task, task.x_train[train_idx], task.y_train[train_idx]),
            "valid": ImageTensors(task, task.x_train[valid_idx], task.y_train[valid_idx]),
            "test": ImageTensors(task, task.x_test, task.y_test),
        }
        for stream, data in parts.items():
            dataset = with_sample_origin(
                _make_taskaware_classification_dataset(data, task_labels=task_id), data
            )
            if cumulative and stream != "test" and streams[stream]:
                dataset = streams[stream][-1].concat(dataset)
            streams[stream].append(dataset)
    return dataset_benchmark(
        streams["train"], streams["test"], other_streams_datasets={"valid": streams["valid"]}
    )


def split_by_classes(
    name: str,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    class_groups: list[list[int]],
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> list[TaskData]:
    """One task per group of original classes, labels remapped to the position in the group."""
    tasks = []
    for k, group in enumerate(class_groups):
        remap = torch.full((int(max(y_train.max(), y_test.max())) + 1,), -1, dtype=torch.long)
        remap[torch.tensor(group)] = torch.arange(len(group))
        train_mask = torch.isin(y_train, torch.tensor(group))
        test_mask = torch.isin(y_test, torch.tensor(group))
        tasks.append(
            TaskData(
                name=f"{name}-{k + 1}",
                x_train=x_train[train_mask],
                y_train=remap[y_train[train_mask]],
                x_test=x_test[test_mask],
                y_test=remap[y_test[test_mask]],
                mean=mean,
                std=std,
            )
        )
    return tasks


def reference_permutation(n: int, seed: int) -> Tensor:
    """The permutation of range(n) that numpy's legacy generator seeded with `seed` draws, which
    is what scikit-learn's `shuffle(..., random_state=seed)` applies (and `np.random.seed(seed);
    np.random.permutation(n)`): the reference loaders' draw."""
    return torch.from_numpy(np.random.RandomState(seed).permutation(n))


def pixel_permutations(pixels: int, n_tasks: int, seed: int, order: DataOrder) -> list[Tensor]:
    """One pixel permutation per task. `reference`: the PMNIST loader of GPM, TRGP and DFGP
    (sahagobinda/GPM dataloader/pmnist.py:16-19, 43): the task seeds 0..9 shuffled with the run's
    seed, task i permuted with seed task_seed[i] * 100 + i (no task is left unpermuted).
    `torch`: torch.randperm from one generator seeded with the run's seed."""
    if order == "reference":
        task_seeds = reference_permutation(n_tasks, seed).tolist()
        return [reference_permutation(pixels, 100 * r + i) for i, r in enumerate(task_seeds)]
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(pixels, generator=generator) for _ in range(n_tasks)]


def permuted_tasks(
    name: str,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    n_tasks: int,
    seed: int,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    order: DataOrder = "reference",
) -> list[TaskData]:
    """Permuted-pixel tasks (GPM's PMNIST protocol): flattened inputs, one fixed permutation per
    task drawn from the run's seed (`pixel_permutations`), all ten labels in every task."""
    flat_train = x_train.reshape(len(x_train), -1)
    flat_test = x_test.reshape(len(x_test), -1)
    tasks = []
    for k, perm in enumerate(pixel_permutations(flat_train.shape[1], n_tasks, seed, order)):
        tasks.append(
            TaskData(
                name=f"{name}-{k + 1}",
                x_train=flat_train[:, perm],
                y_train=y_train,
                x_test=flat_test[:, perm],
                y_test=y_test,
                mean=mean,
                std=std,
            )
        )
    return tasks


MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
#: (x_train, y_train, x_test, y_test) of a dataset.
Split = tuple[Tensor, Tensor, Tensor, Tensor]


def permuted_mnist(name: str, data: Split, options: DataOptions) -> TaskSequence:
    """Ten pixel-permuted copies of MNIST-like (x_train, y_train, x_test, y_test), normalised with
    MNIST's mean and std, one shared ten-way head (GPM's PMNIST; `permuted_tasks`)."""
    tasks = permuted_tasks(
        name,
        *data,
        n_tasks=10,
        seed=options.seed,
        mean=MNIST_MEAN,
        std=MNIST_STD,
        order=options.order,
    )
    return TaskSequence(tasks=tasks, classes_per_task=10, multi_head=False)
