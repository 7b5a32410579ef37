"""Continual evaluation (`protocol.eval_every`): the accuracy on every task trained so far, the one
in training included, every K training iterations and when each task ends, on a fixed seeded
subset of each task's evaluation data (De Lange, van de Ven & Tuytelaars, ICLR 2023).

The evaluation is the template's own (`SupervisedTemplate.eval`, which Avalanche allows inside
training and which restores the training state after it), so that plugins' evaluation hooks take
part as at a task's end (TRGP evaluates a past task with its own scales). It leaves training
exactly as it was: the random streams (torch, numpy, Python) are restored after every evaluation,
so a run's accuracy matrix is the same with it as without it (tests/test_continual.py).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from avalanche.core import SupervisedPlugin

from clbench.evaluation import AccuracyRecorder


def evaluation_subsets(stream: Sequence[Any], samples: int, seed: int) -> list[Any]:
    """Per experience of `stream`, a copy holding at most `samples` of its samples (everything
    else, its task and classes, as the original), drawn without replacement with a generator
    seeded with `seed` and kept in stored order: every strategy run with one seed is evaluated
    on the same samples."""
    generator = torch.Generator().manual_seed(seed)
    subsets = []
    for experience in stream:
        chosen = torch.randperm(len(experience.dataset), generator=generator)[:samples]
        subset = copy.copy(experience)
        subset.dataset = experience.dataset.subset(chosen.sort().values.tolist())
        subsets.append(subset)
    return subsets


@contextmanager
def random_state_kept(device: torch.device) -> Iterator[None]:
    """Every random stream training draws from (torch's on the CPU and on `device`, numpy's,
    Python's) is as it was before the block: an evaluation's data loaders draw seeds from it."""
    devices = [device] if device.type == "cuda" else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        yield
    np.random.set_state(numpy_state)
    random.setstate(python_state)


class ContinualEvaluation(SupervisedPlugin):
    """Records the curve of a run (`clbench.metrics.Curve`): the template calls it after every
    training iteration, the runner when a task has ended (`task_ended`). It must be the last of
    the harness's plugins, after the schedule has restored a task's best weights."""

    def __init__(self, subsets: list[Any], every: int, recorder: AccuracyRecorder) -> None:
        super().__init__()
        self.subsets = subsets
        self.every = every
        self.recorder = recorder
        self.iteration = 0
        self.rows: list[tuple[int, int, float]] = []
        self.task_ends: list[int] = []
        self.seconds = 0.0

    def _evaluate(self, strategy: Any, tasks: int) -> None:
        """Record the accuracy on the first `tasks` subsets at the current iteration."""
        started = time.perf_counter()
        with random_state_kept(strategy.device):
            strategy.eval(self.subsets[:tasks])
        accuracies = self.recorder.accuracies(tasks)
        self.rows += [(self.iteration, k + 1, round(100 * a, 10)) for k, a in enumerate(accuracies)]
        self.seconds += time.perf_counter() - started

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.iteration += 1
        if self.iteration % self.every == 0:
            self._evaluate(strategy, strategy.clock.train_exp_counter + 1)

    def task_ended(self, strategy: Any, tasks: int) -> None:
        """Evaluate the model as the task that made `tasks` trained ends (its best weights
        restored); an evaluation at this iteration during training is replaced by this one."""
        self.rows = [row for row in self.rows if row[0] != self.iteration]
        self._evaluate(strategy, tasks)
        self.task_ends.append(self.iteration)

    def record(self, split: str) -> dict[str, Any]:
        """The result file's `continual` record: settings, task ends and the curve as columns."""
        iteration, task, accuracy = (list(column) for column in zip(*self.rows, strict=True))
        return {
            "eval_every": self.every,
            "split": split,
            "subset_sizes": [len(subset.dataset) for subset in self.subsets],
            "seconds": self.seconds,
            "task_ends": list(self.task_ends),
            "iteration": iteration,
            "task": task,
            "accuracy": accuracy,
        }
