"""Samples and statistics of tasks that strategies draw at task boundaries (bases, references,
Gram matrices)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from clbench.linalg import GramAccumulator
from clbench.models import evaluation_mode


def task_forward(model: nn.Module, x: Tensor, t: Tensor) -> Tensor:
    """The model's output on `x` with task labels `t`, as the training template computes it
    (Avalanche's `avalanche_forward`, imported on the first call: only training calls it, and
    training has imported Avalanche already; listing strategies does not)."""
    from avalanche.models import avalanche_forward

    return avalanche_forward(model, x, t)


def sample_task_batch(
    strategy, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(x, y, task labels) of `n` random training samples of the current experience (all of
    them when it has fewer), on the device; drawn with `generator`, by default the run's seeded
    global one."""
    dataset = strategy.experience.dataset
    chosen = torch.randperm(len(dataset), generator=generator)[:n].tolist()
    # the loader draws its base seed from `generator` too: none is taken from the global stream
    loader = DataLoader(Subset(dataset, chosen), batch_size=len(chosen), generator=generator)
    x, y, t = next(iter(loader))
    return x.to(strategy.device), y.to(strategy.device), t.to(strategy.device)


def task_loss_backward(strategy, n: int, generator: torch.Generator | None = None) -> None:
    """Fill the model's gradients with those of the current task's cross-entropy on `n` of its
    training samples, in eval mode (no dropout noise). The caller reads them, then zeroes them."""
    model = strategy.model
    x, y, t = sample_task_batch(strategy, n, generator)
    model.zero_grad()
    with evaluation_mode(model):
        F.cross_entropy(task_forward(model, x, t), y).backward()


@torch.no_grad()
def layer_grams(
    strategy, layers: dict[str, nn.Module], datasets: list[Dataset], batch_size: int
) -> dict[str, Tensor]:
    """Each layer's Gram matrix G = sum x x^T (float64) of its inputs over `datasets`, through
    the current model in eval mode, in batches of `batch_size` (NESS's and Adam-NSCL's
    statistics)."""
    model = strategy.model
    loader: DataLoader[Any] = DataLoader(ConcatDataset(datasets), batch_size=batch_size)
    with evaluation_mode(model), GramAccumulator(model, layers) as accumulated:
        for x, _, t in loader:
            task_forward(model, x.to(strategy.device), t.to(strategy.device))
    return accumulated.grams
