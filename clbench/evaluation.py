"""Test accuracy per task, recorded while Avalanche runs its eval loop (so that plugins' eval hooks,
such as per-task parameters, take part)."""

from __future__ import annotations

from collections import defaultdict

from avalanche.core import SupervisedPlugin


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
        """Accuracy of each task 0..n_tasks-1 from the last eval call."""
        return [self.correct[k] / self.seen[k] for k in range(n_tasks)]
