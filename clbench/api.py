"""The extension API: what a package outside clbench needs to add a strategy or a benchmark.

Strategies: a factory `def f(model: nn.Module, params: P) -> StrategyBuild`, `P` a dataclass of
typed parameters (bool, int, float, str, Literal, optional or list/tuple of those, so that
`--set name.field=value` can parse them). `StrategyBuild` carries the plugins, optionally a
transformed model, and `cumulative` for joint-style training. Plugins derive from `StrategyPlugin`,
whose hooks tell the harness what they keep, report, train and decay (`clbench.strategies.contract`;
importing it from `clbench.strategies` keeps a strategy module free of Avalanche and pandas).
Register under the entry-point group `clbench.strategies` or call `register_strategy`; presets
under `clbench.presets`.

Benchmarks: a builder `def b(options: DataOptions) -> TaskSequence`, made with
`task_from_arrays` / `task_from_datasets` and `task_sequence`; the harness makes the Avalanche
scenario (validation split, task labels). Register under `clbench.benchmarks` or call
`register_benchmark`. `scenario` builds the same Avalanche scenario the harness trains on.

Notebooks: `run(benchmark, strategy, ...)` trains one run and returns its result (the document a
result file holds), `load_results(folder)` reads a folder of result files into a pandas
DataFrame, one row per run. Accuracies and metrics are in percent everywhere: in result files, in
the DataFrame, in tables and figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from clbench.data import DataOptions, TaskData, TaskSequence, register_benchmark
from clbench.data.benchmark import to_scenario as scenario
from clbench.data.custom import task_from_arrays, task_from_datasets, task_sequence
from clbench.strategies import StrategyBuild, StrategyPlugin, TaskReport, register_strategy

__all__ = [
    "DataOptions",
    "load_results",
    "run",
    "StrategyBuild",
    "StrategyPlugin",
    "TaskData",
    "TaskReport",
    "TaskSequence",
    "register_benchmark",
    "register_strategy",
    "scenario",
    "task_from_arrays",
    "task_from_datasets",
    "task_sequence",
]


def run(
    benchmark: str,
    strategy: str,
    seed: int = 0,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    model: str | None = None,
    device: str = "cpu",
    data_root: str | Path = "data",
    results_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train `strategy` on `benchmark` (as `clbench run` does) and return the result document:
    `accuracy_matrix` (percent, row t = after task t, tasks from 1), `metrics` (acc, bwt,
    forgetting, learning_accuracy, average_incremental_accuracy and, on benchmarks with one shared
    head, forward_transfer, in percent or points; README.md, "Metrics"), `initial_accuracy` (one
    shared head only), `tasks`, `spec`, `environment`, `provenance`.
    `overrides` maps an owner (`protocol`, `model` or the strategy's name) to field values, as
    `--set` does, e.g. `{"protocol": {"epochs": 3}, "ewc": {"ewc_lambda": 10}}`. With
    `results_dir` the result file is written there too."""
    from clbench.resolution import RunSpec
    from clbench.runner import run as run_spec

    spec = RunSpec(
        benchmark=benchmark,
        strategy=strategy,
        seed=seed,
        model=model,
        device=device,
        data_root=str(data_root),
        typed={owner: dict(values) for owner, values in (overrides or {}).items()},
    )
    return run_spec(spec, Path(results_dir) if results_dir is not None else None)


def load_results(folder: str | Path) -> pd.DataFrame:
    """The valid result files of `folder`, one row per run: benchmark, strategy, variant (the
    parameters that differ between runs of one strategy), seed, name, acc, bwt, forgetting,
    learning_accuracy, average_incremental_accuracy, forward_transfer (percent / points; NaN
    where a run does not define it), seconds, trainable_params, kept_bytes, matrix (the accuracy
    matrix, percent), config (every parameter) and config_key (the configuration as JSON: group
    by it, never by name alone, to average repeats of one experiment), the strategy's display
    name, family and role, and the code, machine, threads and jobs that produced the run.
    Unreadable files are left out."""
    from clbench.report.collect import collect

    runs = collect(Path(folder)).runs
    first = ["benchmark", "strategy", "variant", "seed", "name"]
    rest = [c for c in runs.columns if c not in first and c != "varied"]
    return runs[first + rest].reset_index(drop=True)
