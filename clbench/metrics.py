"""Continual-learning metrics from an accuracy matrix R, where R[t][j] (t, j = 1..T) is the test
accuracy on task j after training task t, from b, where b_j is the accuracy on task j of the model
as built, before any training, and from a continual-evaluation curve (`Curve`: the accuracy on each
task every K training iterations; README.md, "Metrics"; docs/methods.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Windowed forgetting looks at windows of this many consecutive evaluations (the window of the
#: continual-evaluation reference, Mattdl/ContinualEvaluation src/eval/continual_eval_metrics.py,
#: `WindowedForgettingPluginMetric(window_size=10)`).
FORGETTING_WINDOW = 10
#: A task has recovered from its stability gap once its accuracy is back within this many points
#: of its accuracy at the end of its own training.
RECOVERY_BAND = 1.0


def _square(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {r.shape}")
    return r


def average_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    """ACC = (1/T) sum_{j=1..T} R[T][j] (Lopez-Paz & Ranzato, 2017)."""
    return float(_square(matrix)[-1].mean())


def backward_transfer(matrix: Sequence[Sequence[float]]) -> float:
    """BWT = 1/(T-1) sum_{j=1..T-1} R[T][j] - R[j][j] (Lopez-Paz & Ranzato, 2017; 0 when T = 1)."""
    r = _square(matrix)
    if len(r) == 1:
        return 0.0
    return float(np.mean(r[-1, :-1] - np.diag(r)[:-1]))


def average_forgetting(matrix: Sequence[Sequence[float]]) -> float:
    """1/(T-1) sum_{j=1..T-1} (max_{j <= t <= T-1} R[t][j]) - R[T][j] (Chaudhry et al., 2018; 0
    when T = 1)."""
    r = _square(matrix)
    if len(r) == 1:
        return 0.0
    best = [r[j : len(r) - 1, j].max() for j in range(len(r) - 1)]
    return float(np.mean(np.asarray(best) - r[-1, :-1]))


def learning_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    """(1/T) sum_{j=1..T} R[j][j]: how well each task is learned when it is trained."""
    return float(np.mean(np.diag(_square(matrix))))


def average_incremental_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    """AIA = (1/T) sum_{t=1..T} (1/t) sum_{j=1..t} R[t][j]: the mean accuracy over the tasks seen
    so far, averaged over the sequence (Rebuffi et al., 2017, iCaRL)."""
    r = _square(matrix)
    return float(np.mean([r[t, : t + 1].mean() for t in range(len(r))]))


def forward_transfer(matrix: Sequence[Sequence[float]], initial: Sequence[float]) -> float:
    """FWT = 1/(T-1) sum_{j=2..T} R[j-1][j] - b_j, with b_j the accuracy on task j of the model
    before any training (Lopez-Paz & Ranzato, 2017; one shared head; 0 when T = 1)."""
    r = _square(matrix)
    b = np.asarray(initial, dtype=float)
    if b.shape != (len(r),):
        raise ValueError(f"initial accuracies must be {len(r)} numbers, got shape {b.shape}")
    if len(r) == 1:
        return 0.0
    return float(np.mean(np.diag(r, k=1) - b[1:]))


@dataclass(frozen=True)
class Curve:
    """A run's continual evaluation, as its result file stores it (`continual`): row r says that
    after `iteration[r]` training iterations the accuracy (percent) on task `task[r]` (from 1) was
    `accuracy[r]`; `task_ends[k]` is the iteration count when task k + 1 ended, and the row of a
    task at its end is of the model the accuracy matrix measures (best weights restored)."""

    iteration: Sequence[int]
    task: Sequence[int]
    accuracy: Sequence[float]
    task_ends: Sequence[int]

    @classmethod
    def of(cls, record: dict[str, Any]) -> Curve:
        """The curve of a result file's `continual` record."""
        return cls(record["iteration"], record["task"], record["accuracy"], record["task_ends"])

    def series(self, task: int) -> tuple[np.ndarray, np.ndarray]:
        """(iterations, accuracies) of task `task` (from 1), in training order."""
        chosen = np.asarray(self.task) == task
        return np.asarray(self.iteration)[chosen], np.asarray(self.accuracy, dtype=float)[chosen]

    def at_end(self, task: int) -> float:
        """Task `task`'s accuracy when its own training ended."""
        iterations, accuracies = self.series(task)
        return float(accuracies[iterations == self.task_ends[task - 1]][0])

    def after_end(self, task: int) -> np.ndarray:
        """Task `task`'s accuracies from its own end (included) to the end of the sequence."""
        iterations, accuracies = self.series(task)
        return accuracies[iterations >= self.task_ends[task - 1]]


def min_accuracy(curve: Curve) -> float:
    """min-ACC = 1/(T-1) sum_{k=1..T-1} min_{n > e_k} a_k(n): the mean over past tasks of their
    lowest accuracy at any evaluation after their own training ended at iteration e_k (De Lange,
    van de Ven & Tuytelaars, ICLR 2023)."""
    return float(np.mean([curve.after_end(k)[1:].min() for k in range(1, len(curve.task_ends))]))


def worst_case_accuracy(curve: Curve) -> float:
    """WC-ACC = (1/T) a_T(e_T) + (1 - 1/T) min-ACC at the end of the sequence: the last task's
    final accuracy and the past tasks' worst ones (De Lange et al., ICLR 2023)."""
    tasks = len(curve.task_ends)
    return float(curve.at_end(tasks) / tasks + (1 - 1 / tasks) * min_accuracy(curve))


def windowed_forgetting(curve: Curve, window: int = FORGETTING_WINDOW) -> float:
    """WF = 1/(T-1) sum_{k<T} max a_k(n_i) - a_k(n_j) over pairs of evaluations i < j at most
    `window` - 1 apart, from task k's end on (0 when it never drops): the largest loss within
    any `window` consecutive evaluations (De Lange et al., ICLR 2023)."""
    worst = []
    for k in range(1, len(curve.task_ends)):
        a = curve.after_end(k)
        drops = [a[i] - a[i + 1 : i + window].min() for i in range(len(a) - 1)]
        worst.append(max([0.0, *drops]))
    return float(np.mean(worst))


@dataclass(frozen=True)
class StabilityGap:
    """Task `task`'s stability gap: during the next task, its accuracy fell `drop` points (>= 0)
    below its value at its own end, lowest `at` iterations into the next task, and, after that
    lowest point, was back within `RECOVERY_BAND` points of that value `recovered_after`
    iterations into the next task (0: its lowest point was within the band; None: not back
    before the next task ended)."""

    task: int
    drop: float
    at: int
    recovered_after: int | None


def stability_gaps(curve: Curve) -> list[StabilityGap]:
    """The stability gap of every task but the last (De Lange et al., ICLR 2023: the
    transient drop of a past task's accuracy when the next task starts, then its recovery)."""
    gaps = []
    for k in range(1, len(curve.task_ends)):
        start, end = curve.task_ends[k - 1], curve.task_ends[k]
        iterations, accuracies = curve.series(k)
        during = (iterations > start) & (iterations <= end)
        steps, values = iterations[during] - start, accuracies[during]
        reference = curve.at_end(k)
        lowest = int(np.argmin(values))
        recovered: int | None = 0  # its lowest point is within the band: it never left it
        if values[lowest] < reference - RECOVERY_BAND:
            back = np.flatnonzero(values[lowest:] >= reference - RECOVERY_BAND)
            recovered = int(steps[lowest + back[0]]) if back.size else None
        gaps.append(
            StabilityGap(
                k, max(0.0, reference - float(values[lowest])), int(steps[lowest]), recovered
            )
        )
    return gaps


def gap_records(curve: Curve) -> list[dict[str, Any]]:
    """The stability gaps of a curve as a result file stores them (`continual.stability_gap`)."""
    return [asdict(gap) for gap in stability_gaps(curve)]


def continual_metrics(curve: Curve) -> dict[str, float]:
    """min-ACC, WC-ACC, windowed forgetting and the mean stability gap of a curve, keyed as in
    result files; empty for a single task (no past task)."""
    if len(curve.task_ends) < 2:
        return {}
    return {
        "min_acc": min_accuracy(curve),
        "wc_acc": worst_case_accuracy(curve),
        "windowed_forgetting": windowed_forgetting(curve),
        "stability_gap": float(np.mean([gap.drop for gap in stability_gaps(curve)])),
    }


def summarize(
    matrix: Sequence[Sequence[float]],
    initial: Sequence[float] | None = None,
    curve: Curve | None = None,
) -> dict[str, float]:
    """The metrics, keyed as in result files; `forward_transfer` only with `initial` (b), the
    continual-evaluation metrics only with `curve`."""
    metrics = {
        "acc": average_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "forgetting": average_forgetting(matrix),
        "learning_accuracy": learning_accuracy(matrix),
        "average_incremental_accuracy": average_incremental_accuracy(matrix),
    }
    if initial is not None:
        metrics["forward_transfer"] = forward_transfer(matrix, initial)
    if curve is not None:
        metrics.update(continual_metrics(curve))
    return metrics
