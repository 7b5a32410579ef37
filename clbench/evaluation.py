"""Test accuracy per task, recorded while Avalanche runs its eval loop (so that plugins' eval hooks,
such as per-task parameters, take part); and the accuracy of the model before any training."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.core import SupervisedPlugin
from avalanche.models import avalanche_forward
from torch import nn

from clbench.data.loading import sequential_loader
from clbench.models import evaluation_mode


class AccuracyRecorder(SupervisedPlugin):
    """Counts correct top-1 predictions per evaluated experience."""

    def __init__(self) -> None:
        super().__init__()
        self.correct: dict[int, int] = defaultdict(int)
        self.seen: dict[int, int] = defaultdict(int)

    def before_eval(self, strategy, **kwargs) -> None:
        self.correct.clear()
        self.seen.clear()

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        exp = strategy.experience.current_experience
        self.correct[exp] += int((strategy.mb_output.argmax(1) == strategy.mb_y).sum())
        self.seen[exp] += len(strategy.mb_y)

    def accuracies(self, n_tasks: int) -> list[float]:
        """Accuracy of each of the first `n_tasks` experiences, in stream order, from the last
        eval call."""
        return [self.correct[k] / self.seen[k] for k in range(n_tasks)]


def initial_accuracies(
    model: nn.Module, datasets: Sequence[AvalancheDataset], batch_size: int
) -> list[float]:
    """b_j of forward transfer (Lopez-Paz & Ranzato, 2017): the accuracy (percent) of `model`, as
    built and before any training, on each of `datasets`, in eval mode on the model's device.

    It runs outside the training template, so no plugin sees it, and restores torch's CPU random
    state after (each data loader draws a seed from it): a run measures the same accuracy matrix
    with it as without it."""
    device = next(model.parameters()).device
    accuracies = []
    with torch.random.fork_rng(devices=[]), torch.no_grad(), evaluation_mode(model):
        for dataset in datasets:
            correct = 0
            for x, y, t in sequential_loader([dataset], batch_size):
                output = avalanche_forward(model, x.to(device), t.to(device))
                correct += int((output.argmax(1) == y.to(device)).sum())
            accuracies.append(round(100 * correct / len(dataset), 10))
    return accuracies
