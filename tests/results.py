"""Hand-made result files for report tests: valid documents with chosen numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clbench.metrics import summarize
from clbench.store import RESULT_FORMAT, write_json_atomic


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
) -> Path:
    """A complete result file; each task takes `seconds / T` (train and eval split 3:1);
    `task_extras[t]` joins task t's record (a strategy's `task_report`)."""
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
        "metrics": summarize(matrix),
        "tasks": [
            {
                "task": t,
                "train_seconds": 0.75 * seconds / n,
                "eval_seconds": 0.25 * seconds / n,
                "trainable_params": trainable,
                "kept_bytes": kept,
                **(task_extras[t] if task_extras else {}),
            }
            for t in range(n)
        ],
        "environment": {},
    }
    path = folder / f"{name}.json"
    write_json_atomic(path, document)
    return path
