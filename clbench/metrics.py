"""Continual-learning metrics from an accuracy matrix R, where R[t][j] (t, j = 1..T) is the test
accuracy on task j after training task t, and from b, where b_j is the accuracy on task j of the
model as built, before any training (README.md, "Metrics"; docs/methods.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def summarize(
    matrix: Sequence[Sequence[float]], initial: Sequence[float] | None = None
) -> dict[str, float]:
    """The metrics, keyed as in result files; `forward_transfer` only with `initial` (b)."""
    metrics = {
        "acc": average_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "forgetting": average_forgetting(matrix),
        "learning_accuracy": learning_accuracy(matrix),
        "average_incremental_accuracy": average_incremental_accuracy(matrix),
    }
    if initial is not None:
        metrics["forward_transfer"] = forward_transfer(matrix, initial)
    return metrics
