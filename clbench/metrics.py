"""Continual-learning metrics from an accuracy matrix R, where R[t][j] is the test accuracy on task
j after training task t (T tasks; docs/methods.md, "The protocol shared by the GPM family")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _square(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {r.shape}")
    return r


def average_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    """ACC = mean_j R[T-1, j]."""
    return float(_square(matrix)[-1].mean())


def backward_transfer(matrix: Sequence[Sequence[float]]) -> float:
    """BWT = mean over j < T-1 of R[T-1, j] - R[j, j] (0 for a single task)."""
    r = _square(matrix)
    if len(r) == 1:
        return 0.0
    return float(np.mean(r[-1, :-1] - np.diag(r)[:-1]))


def average_forgetting(matrix: Sequence[Sequence[float]]) -> float:
    """Mean over j < T-1 of max_{j <= t < T-1} R[t, j] - R[T-1, j] (Chaudhry et al., 2018)."""
    r = _square(matrix)
    if len(r) == 1:
        return 0.0
    best = [r[j : len(r) - 1, j].max() for j in range(len(r) - 1)]
    return float(np.mean(np.asarray(best) - r[-1, :-1]))


def learning_accuracy(matrix: Sequence[Sequence[float]]) -> float:
    """Mean over j of R[j, j]: how well each task is learned when it is trained."""
    return float(np.mean(np.diag(_square(matrix))))


def summarize(matrix: Sequence[Sequence[float]]) -> dict[str, float]:
    """All four metrics, keyed as in result files."""
    return {
        "acc": average_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "forgetting": average_forgetting(matrix),
        "learning_accuracy": learning_accuracy(matrix),
    }
