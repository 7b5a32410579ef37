"""Suites: benchmarks x strategies x seeds x parameter grids, expanded into run specs.

A suite file holds `benchmarks`, `strategies` (a list or "all"), `seeds`, optional `presets` (per
benchmark: `protocol`, `strategies.<name>`, `strategy_protocol.<name>`), optional `overrides`
(`{owner = {field = value}}`, every benchmark) and an optional `grid` (`{"owner.field" =
[values]}`); every grid entry multiplies the runs of the strategy it names (or of all, for
`protocol` and `model`). Precedence: shipped presets < suite preset < suite overrides < grid
point, first for the benchmark-wide protocol, then for each strategy's own protocol settings,
which win over benchmark-wide ones; what the user types (`--set`) applies over all of them
(`clbench.resolution`).

A run whose valid result file exists, made by the current code (`clbench.provenance`), is skipped,
so an interrupted sweep (even one killed with SIGKILL) resumes where it stopped: result files are
written atomically, so a file is either complete or absent. A run that fails is recorded in
`<name>.failed.json` with its error and the sweep goes on. Runs execute on an executor
(`clbench.executors`), imported with the training code when a sweep plans or runs: reading and
expanding a suite does not import them.
"""

from __future__ import annotations

import fcntl
import itertools
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from clbench.arguments import check_seed
from clbench.data import BENCHMARKS
from clbench.errors import ClbenchError, ConfigError
from clbench.params import parse_assignment
from clbench.provenance import current_code_digest, harness_digest
from clbench.resolution import RunSpec, resolve, suite_level
from clbench.store import InvalidDocument, ensure_writable, load_result, remove_temporaries
from clbench.strategies import STRATEGIES

if TYPE_CHECKING:
    from clbench.executors import Executor

SUITE_KEYS = {"benchmarks", "strategies", "seeds", "presets", "overrides", "grid"}
PRESET_KEYS = {"protocol", "strategies", "strategy_protocol"}


def shipped_suites() -> list[str]:
    folder = resources.files("clbench").joinpath("suites")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_suite(name_or_path: str) -> dict[str, Any]:
    """A shipped suite by name, or a TOML file by path, checked by `check_suite`."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"suite {path}: not UTF-8 text (byte {err.start})") from None
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
    check_suite(suite, name_or_path)
    return suite


def check_suite(suite: dict[str, Any], label: str) -> None:
    """One line naming the first key of `suite` whose type or name is not valid: every key must
    be known, every benchmark, strategy and owner registered, every seed an integer seed, and
    every preset, override and grid entry must name a benchmark or strategy of the suite."""

    def fail(message: str) -> None:
        raise ConfigError(f"suite {label}: {message}")

    def names(key: str, registry: Any) -> list[str]:
        value = suite.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(f"{key} = {value!r} must be a list of {registry.kind} names")
        for name in value:
            try:
                registry.get(name)
            except ConfigError as err:
                fail(str(err))
        return value

    def table(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            fail(f"{where} = {value!r} must be a table")
        return value

    unknown = sorted(set(suite) - SUITE_KEYS)
    if unknown:
        fail(f"unknown key {unknown[0]!r}; valid: {', '.join(sorted(SUITE_KEYS))}")
    benchmarks = names("benchmarks", BENCHMARKS)
    if suite.get("strategies", "all") != "all":
        names("strategies", STRATEGIES)
    strategies = suite_strategies(suite)
    seeds = suite.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        fail(f"seeds = {seeds!r} must be a non-empty list of integers")
    for seed in seeds:
        check_seed(seed, f"suite {label}: seeds entry")
    owners = ["protocol", "model", *strategies]
    for benchmark, preset in table(suite.get("presets", {}), "presets").items():
        if benchmark not in benchmarks:
            fail(f"presets.{benchmark} names no benchmark of the suite ({', '.join(benchmarks)})")
        preset = table(preset, f"presets.{benchmark}")
        unknown = sorted(set(preset) - PRESET_KEYS)
        if unknown:
            fail(
                f"presets.{benchmark}: unknown key {unknown[0]!r}; "
                f"valid: {', '.join(sorted(PRESET_KEYS))}"
            )
        table(preset.get("protocol", {}), f"presets.{benchmark}.protocol")
        for key in ("strategies", "strategy_protocol"):
            for strategy, values in table(
                preset.get(key, {}), f"presets.{benchmark}.{key}"
            ).items():
                where = f"presets.{benchmark}.{key}.{strategy}"
                if strategy not in strategies:
                    fail(f"{where} names no strategy of the suite")
                table(values, where)
    for owner, values in table(suite.get("overrides", {}), "overrides").items():
        if owner not in owners:
            fail(f"overrides.{owner}: unknown owner; valid: protocol, model or a suite strategy")
        table(values, f"overrides.{owner}")
    for key, values in table(suite.get("grid", {}), "grid").items():
        owner = key.split(".", 1)[0]
        if "." not in key or owner not in owners:
            fail(f"grid key {key!r} must be OWNER.FIELD with OWNER protocol, model or a strategy")
        if not isinstance(values, list) or not values:
            fail(f"grid.{key} = {values!r} must be a non-empty list of values")


def suite_overrides(suite: dict[str, Any], benchmark: str, strategy: str) -> dict[str, dict]:
    """The suite level of one run (`RunSpec.overrides`): the suite's table for the benchmark
    (`clbench.resolution.suite_level`) with the suite's `overrides` for the run's owners on top."""
    chosen = suite_level(suite.get("presets", {}).get(benchmark, {}), strategy)
    for owner, values in suite.get("overrides", {}).items():
        if owner in ("protocol", "model", strategy):
            chosen[owner] = {**chosen.get(owner, {}), **values}
    return chosen


def suite_strategies(suite: dict[str, Any]) -> list[str]:
    """The strategies a suite names; `strategies = "all"` means every registered strategy."""
    chosen = suite.get("strategies", "all")
    return [name for name, _ in STRATEGIES.items()] if chosen == "all" else list(chosen)


def expand(
    suite: dict[str, Any],
    data_root: str = "data",
    device: str = "cpu",
    typed: dict[str, dict[str, Any]] | None = None,
    origin: str = "suite",
) -> list[RunSpec]:
    """Run specs of a suite (`suite_strategies` x benchmarks x grid points x seeds). `typed`: what
    the user typed (`--set`), given to every run it applies to; `origin` names the suite in
    protocol cards."""
    strategies = suite_strategies(suite)
    typed = typed or {}
    grid = [
        (parse_assignment(f"{key}=")[:2], values) for key, values in suite.get("grid", {}).items()
    ]
    specs = []
    for benchmark in suite.get("benchmarks", []):
        for strategy in strategies:
            owners = ("protocol", "model", strategy)
            axes = [(key, values) for key, values in grid if key[0] in owners]
            mine = {owner: dict(values) for owner, values in typed.items() if owner in owners}
            for combination in itertools.product(*(values for _, values in axes)):
                chosen = suite_overrides(suite, benchmark, strategy)
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
                        typed=mine,
                        origin=origin,
                    )
                    for seed in suite.get("seeds", [0])
                ]
    return specs


@dataclass
class SweepSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
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


@dataclass
class Planned:
    """A suite's runs against a results folder: what to run, what is there, what is stale."""

    todo: list[RunSpec]
    present: list[str]
    stale: list[str]
    names: list[str]


def plan(
    specs: list[RunSpec],
    results_dir: Path,
    reuse_stale: bool = False,
    names: list[str] | None = None,
) -> Planned:
    """Sort `specs` into runs to do and valid results to keep. A result whose `code_digest`
    differs from what the current code would record (or that records none) is stale and is run
    again, unless `reuse_stale`; an invalid result file is run again as if absent, with a warning
    line on stderr. Duplicate specs run once. `names`: the specs' resolved names, where the caller
    has them."""
    names = names or [resolve(spec).name for spec in specs]
    harness = harness_digest()  # read once; each strategy's package is read once below
    digests: dict[str | None, str] = {}
    planned = Planned([], [], [], names)
    seen: set[str] = set()
    for spec, name in zip(specs, names, strict=True):
        if name in seen:
            continue
        seen.add(name)
        try:
            result = load_result(Path(results_dir) / f"{name}.json")
        except InvalidDocument as err:
            print(f"clbench: warning: invalid result {err}; the run is done again", file=sys.stderr)
            result = None
        if result is not None:
            module = STRATEGIES.get(spec.strategy).module
            if module not in digests:
                digests[module] = current_code_digest(module, harness)
            recorded = result.get("provenance", {}).get("code_digest")
            if reuse_stale or recorded == digests[module]:
                planned.present.append(name)
                continue
            planned.stale.append(name)
        planned.todo.append(spec)
    return planned


def run_sweep(
    specs: list[RunSpec],
    results_dir: Path,
    executor: Executor | None = None,
    say: Callable[[str], None] = tqdm.write,
    reuse_stale: bool = False,
) -> SweepSummary:
    """Run every spec without a valid, current result in `results_dir` on `executor` (default:
    local, in the foreground); failed runs leave a failure file. On a terminal a bar counts the
    runs; elsewhere (logs) each finished run is one line. SIGINT or SIGTERM while the runs go on
    stops those in progress and raises `Interrupted`, which says how far the sweep got."""
    from clbench.executors.base import Interrupted, interruptible
    from clbench.executors.local import LocalExecutor

    results_dir = Path(results_dir)
    executor = executor or LocalExecutor()
    summary = SweepSummary()
    names = [resolve(spec).name for spec in specs]  # every name and value is checked up front
    ensure_writable(results_dir)
    with sweep_lock(results_dir):
        remove_temporaries(results_dir)  # writes cut short by a kill
        planned = plan(specs, results_dir, reuse_stale, names)
        summary.skipped, summary.stale, todo = planned.present, planned.stale, planned.todo
        if summary.skipped:
            say(f"{len(summary.skipped)} runs already have a valid result; {len(todo)} to run")
        if summary.stale:
            say(
                f"{len(summary.stale)} results were made by other code (code digest differs) and "
                "are run again; --reuse-stale keeps them"
            )
        on_terminal = sys.stderr.isatty()
        outcomes = executor.run_all(todo, results_dir)
        with (
            tqdm(
                total=len(todo),
                desc="runs",
                unit="run",
                dynamic_ncols=True,
                disable=not on_terminal,
            ) as bar,
            closing(outcomes),
            interruptible(),
        ):
            try:
                for count, outcome in enumerate(outcomes, start=1):
                    bar.update(1)
                    if outcome.ok:
                        summary.done.append(outcome.name)
                    else:
                        summary.failed[outcome.name] = outcome.error
                        say(f"failed: {outcome.name}: {outcome.error}")
                    if not on_terminal and outcome.ok:
                        say(
                            f"run {count}/{len(todo)} done: {outcome.name} ({outcome.seconds:.1f}s)"
                        )
                    bar.set_postfix(failed=len(summary.failed), refresh=False)
            except Interrupted as stop:
                stop.total, stop.failed = len(todo), len(summary.failed)
                stop.finished = len(summary.done) + stop.failed
                outcomes.throw(stop)  # the executor stops and counts its runs, and raises it again
    return summary
