"""Suites: benchmarks x strategies x seeds x parameter grids, expanded into run specs.

A suite file holds `benchmarks`, `strategies` (a list or "all"), `seeds`, optional `presets`
(per benchmark, shaped like `clbench/presets/benchmarks.toml`: `protocol`, `strategies.<name>`,
`strategy_protocol.<name>`), optional `overrides` (`{owner = {field = value}}`, every benchmark)
and an optional `grid` (`{"owner.field" = [values]}`); every grid entry multiplies the runs of the
strategy it names (or of all, for `protocol` and `model`). Precedence: shipped preset < suite
preset < suite overrides < grid point.

A run whose valid result file exists is skipped, so an interrupted sweep (even one killed with
SIGKILL) resumes where it stopped: result files are written atomically, so a file is either
complete or absent. A run that fails is recorded in `<name>.failed.json` with its error and the
sweep goes on. Runs execute on an executor (`clbench.executors`).
"""

from __future__ import annotations

import fcntl
import itertools
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from clbench.errors import ClbenchError, ConfigError
from clbench.executors import Executor
from clbench.executors.local import LocalExecutor
from clbench.params import parse_assignment
from clbench.runner import RunSpec, resolve
from clbench.store import ensure_writable, read_result
from clbench.strategies import STRATEGIES

SUITE_KEYS = {"benchmarks", "strategies", "seeds", "presets", "overrides", "grid"}
PRESET_KEYS = {"protocol", "strategies", "strategy_protocol"}


def shipped_suites() -> list[str]:
    folder = resources.files("clbench").joinpath("suites")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_suite(name_or_path: str) -> dict[str, Any]:
    """A shipped suite by name, or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        text = path.read_text()
    elif name_or_path in shipped_suites():
        text = resources.files("clbench").joinpath(f"suites/{name_or_path}.toml").read_text()
    else:
        valid = ", ".join(shipped_suites())
        raise ConfigError(
            f"unknown suite {name_or_path!r}; shipped suites: {valid}, or a .toml path"
        )
    try:
        suite = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"suite {name_or_path}: invalid TOML ({err})") from None
    unknown = sorted(set(suite) - SUITE_KEYS)
    if unknown:
        raise ConfigError(
            f"suite {name_or_path}: unknown key {unknown[0]!r}; "
            f"valid: {', '.join(sorted(SUITE_KEYS))}"
        )
    for benchmark, preset in suite.get("presets", {}).items():
        unknown = sorted(set(preset) - PRESET_KEYS)
        if unknown:
            raise ConfigError(
                f"suite {name_or_path}: presets.{benchmark}: unknown key {unknown[0]!r}; "
                f"valid: {', '.join(sorted(PRESET_KEYS))}"
            )
    return suite


def _suite_preset(suite: dict[str, Any], benchmark: str, strategy: str) -> dict[str, dict]:
    """The suite's per-benchmark settings for one strategy, as `{owner: {field: value}}`."""
    preset = suite.get("presets", {}).get(benchmark, {})
    protocol = {
        **preset.get("protocol", {}),
        **preset.get("strategy_protocol", {}).get(strategy, {}),
    }
    chosen = {"protocol": protocol, strategy: dict(preset.get("strategies", {}).get(strategy, {}))}
    return {owner: values for owner, values in chosen.items() if values}


def expand(suite: dict[str, Any], data_root: str = "data", device: str = "cpu") -> list[RunSpec]:
    """Run specs of a suite; `strategies = "all"` means every registered strategy."""
    strategies = suite.get("strategies", "all")
    if strategies == "all":
        strategies = [name for name, _ in STRATEGIES.items()]
    overrides = suite.get("overrides", {})
    grid = [
        (parse_assignment(f"{key}=")[:2], values) for key, values in suite.get("grid", {}).items()
    ]
    specs = []
    for benchmark in suite.get("benchmarks", []):
        for strategy in strategies:
            owners = ("protocol", "model", strategy)
            axes = [(key, values) for key, values in grid if key[0] in owners]
            for combination in itertools.product(*(values for _, values in axes)):
                chosen = _suite_preset(suite, benchmark, strategy)
                for owner, values in overrides.items():
                    if owner in owners:
                        chosen[owner] = {**chosen.get(owner, {}), **values}
                for ((owner, name), _), value in zip(axes, combination, strict=True):
                    chosen.setdefault(owner, {})[name] = value
                specs += [
                    RunSpec(
                        benchmark=benchmark,
                        strategy=strategy,
                        seed=seed,
                        device=device,
                        data_root=data_root,
                        overrides=chosen,
                    )
                    for seed in suite.get("seeds", [0])
                ]
    return specs


@dataclass
class SweepSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@contextmanager
def sweep_lock(results_dir: Path) -> Iterator[None]:
    """Hold `results_dir/.sweep.lock` for the sweep: one sweep per folder at a time. The kernel
    releases the lock when the process dies, however it dies."""
    handle = (results_dir / ".sweep.lock").open("w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClbenchError(
                f"another sweep is writing to {results_dir} (it holds .sweep.lock); "
                "wait for it or choose another --results folder"
            ) from None
        yield
    finally:
        handle.close()


def run_sweep(
    specs: list[RunSpec],
    results_dir: Path,
    executor: Executor | None = None,
    say: Callable[[str], None] = tqdm.write,
) -> SweepSummary:
    """Run every spec without a valid result in `results_dir` on `executor` (default: local, in
    the foreground), with a progress bar over runs; failed runs leave a failure file."""
    results_dir = Path(results_dir)
    executor = executor or LocalExecutor()
    summary = SweepSummary()
    names = [resolve(spec).name for spec in specs]  # every name and value is checked up front
    ensure_writable(results_dir)
    with sweep_lock(results_dir):
        for stale in results_dir.glob(".*.json.*.tmp"):  # writes cut short by a kill
            stale.unlink(missing_ok=True)
        todo, seen = [], set()
        for spec, name in zip(specs, names, strict=True):
            if read_result(results_dir / f"{name}.json") is not None:
                summary.skipped.append(name)
            elif name not in seen:
                todo.append(spec)
            seen.add(name)
        if summary.skipped:
            say(f"{len(summary.skipped)} runs already have a valid result; {len(todo)} to run")
        with tqdm(total=len(todo), desc="runs", unit="run", dynamic_ncols=True) as bar:
            for outcome in executor.run_all(todo, results_dir):
                bar.update(1)
                if outcome.ok:
                    summary.done.append(outcome.name)
                else:
                    summary.failed[outcome.name] = outcome.error
                    say(f"failed: {outcome.name}: {outcome.error}")
                bar.set_postfix(failed=len(summary.failed), refresh=False)
    return summary
