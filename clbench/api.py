"""The extension API: what a package outside clbench needs to add a strategy or a benchmark.

Strategies: a factory `def f(model: nn.Module, params: P) -> StrategyBuild`, `P` a dataclass of
typed parameters (bool, int, float, str, Literal, optional or list/tuple of those, so that
`--set name.field=value` can parse them). `StrategyBuild` carries Avalanche plugins, optionally a
transformed model, and `cumulative` for joint-style training. A plugin may define `kept_bytes()`
(memory kept between tasks) and `task_report()` (extra per-task fields of the result file).
Register under the entry-point group `clbench.strategies` or call `register_strategy`.

Benchmarks: a builder `def b(options: DataOptions) -> TaskSequence`, made with
`task_from_arrays` / `task_from_datasets` and `task_sequence`; the harness makes the Avalanche
scenario (validation split, task labels). Register under `clbench.benchmarks` or call
`register_benchmark`. `scenario` builds the same Avalanche scenario the harness trains on.
"""

from clbench.data import DataOptions, TaskData, TaskSequence, register_benchmark
from clbench.data.benchmark import to_scenario as scenario
from clbench.data.custom import task_from_arrays, task_from_datasets, task_sequence
from clbench.strategies import StrategyBuild, register_strategy

__all__ = [
    "DataOptions",
    "StrategyBuild",
    "TaskData",
    "TaskSequence",
    "register_benchmark",
    "register_strategy",
    "scenario",
    "task_from_arrays",
    "task_from_datasets",
    "task_sequence",
]
