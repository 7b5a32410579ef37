"""Hand-made result files for report tests: valid documents with chosen numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.metrics import summarize
from clbench.report.build import ReportOptions
from clbench.store import RESULT_FORMAT, write_json_atomic

#: What every hand-made result records unless a test says otherwise: one machine, one code.
ENVIRONMENT = {
    "versions": {"torch": "2.14.1", "python": "3.11.7"},
    "device": "cpu",
    "cpu": "Test CPU",
    "cpu_kernels": "AVX2",
    "threads": 1,
    "jobs": 1,
}
#: Report options for a test that reads the tables only: drawing figures is most of a report's time.
NO_FIGURES = ReportOptions(figures=())

PROVENANCE = {
    "git_commit": "0123456789abcdef",
    "git_dirty": False,
    "harness_digest": "harness0digest",
    "code_digest": "code0digest",
}


#: A continual-evaluation curve worked by hand (tests/test_continual_metrics.py): (iteration, task,
#: accuracy) rows of three tasks of 4 iterations each, evaluated every 2 iterations; the rows at
#: 4, 8 and 12 are the tasks' ends.
HAND_ROWS = [
    (2, 1, 60.0),
    (4, 1, 80.0),
    (6, 1, 50.0),
    (6, 2, 40.0),
    (8, 1, 79.5),
    (8, 2, 90.0),
    (10, 1, 60.0),
    (10, 2, 87.0),
    (10, 3, 30.0),
    (12, 1, 75.0),
    (12, 2, 84.0),
    (12, 3, 95.0),
]


def curve_record(matrix: list[list[float]], every: int = 2, per_task: int = 4) -> dict[str, Any]:
    """A continual-evaluation record (`clbench.store.ContinualRecord`) agreeing with `matrix`:
    tasks of `per_task` iterations, evaluated every `every`; at each task's end the rows are the
    matrix's, in between the past tasks sit 5 points lower and the task in training at half."""
    rows = []
    for t in range(len(matrix)):
        for step in range(every, per_task + 1, every):
            end = step == per_task
            for j in range(t + 1):
                accuracy = (
                    matrix[t][j]
                    if end
                    else (matrix[t][j] / 2 if j == t else max(0.0, matrix[t - 1][j] - 5))
                )
                rows.append((t * per_task + step, j + 1, accuracy))
    return {
        "eval_every": every,
        "split": "test",
        "subset_sizes": [500] * len(matrix),
        "seconds": 1.0,
        "task_ends": [per_task * (t + 1) for t in range(len(matrix))],
        "iteration": [r[0] for r in rows],
        "task": [r[1] for r in rows],
        "accuracy": [r[2] for r in rows],
    }


def write_result(
    folder: Path,
    benchmark: str,
    strategy: str,
    seed: int,
    matrix: list[list[float]],
    seconds: float = 10.0,
    trainable: int = 1000,
    kept: int = 0,
    strategy_params: dict[str, Any] | None = None,
    task_extras: list[dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    strategy_info: dict[str, str] | None = None,
    initial: list[float] | None = None,
    continual: dict[str, Any] | None = None,
) -> Path:
    """A complete result file; each task takes `seconds / T` (train and eval split 3:1);
    `task_extras[t]` joins task t's record (a strategy's `task_report`); `environment` and
    `provenance` update the ones every file shares by default (one machine, one code); `initial`:
    the untrained model's accuracies (`initial_accuracy`, benchmarks with a shared head);
    `continual`: the continual-evaluation record (`clbench.store.ContinualRecord`)."""
    n = len(matrix)
    name = f"{benchmark}__{strategy}__seed{seed}__{abs(hash(str(strategy_params))) % 10**10:010d}"
    document = {
        "format": RESULT_FORMAT,
        "name": name,
        "spec": {
            "benchmark": benchmark,
            "strategy": strategy,
            "model": "mlp",
            "seed": seed,
            "device": "cpu",
            "protocol": {"epochs": 1, "lr": 0.1},
            "model_params": {},
            "strategy_params": strategy_params or {},
        },
        "accuracy_matrix": matrix,
        "metrics": summarize(matrix, initial),
        "tasks": [
            {
                "task": t + 1,
                "train_seconds": 0.75 * seconds / n,
                "eval_seconds": 0.25 * seconds / n,
                "trainable_params": trainable,
                "kept_bytes": kept,
                **(task_extras[t] if task_extras else {}),
            }
            for t in range(n)
        ],
        "environment": {**ENVIRONMENT, **(environment or {})},
        "provenance": {**PROVENANCE, **(provenance or {})},
    }
    if strategy_info is not None:
        document["strategy_info"] = strategy_info
    if initial is not None:
        document["initial_accuracy"] = initial
    if continual is not None:
        document["continual"] = continual
    path = folder / f"{name}.json"
    write_json_atomic(path, document)
    return path
