"""A progress bar over the epochs of the task being trained (on a terminal only: a log gets the
runner's one line per task instead of redraw sequences)."""

from __future__ import annotations

import sys

from avalanche.core import SupervisedPlugin
from tqdm import tqdm


class EpochBar(SupervisedPlugin):
    """One bar per task, `epochs` long (a task that stops early closes its bar early)."""

    def __init__(self, epochs: int, n_tasks: int) -> None:
        super().__init__()
        self.epochs, self.n_tasks = epochs, n_tasks
        self.bar: tqdm | None = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.current_experience
        self.bar = tqdm(
            total=self.epochs,
            desc=f"  task {task + 1}/{self.n_tasks}",
            unit="epoch",
            leave=False,
            dynamic_ncols=True,
            disable=not sys.stderr.isatty(),
        )

    def after_training_epoch(self, strategy, **kwargs) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
