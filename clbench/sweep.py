"""Suites: benchmarks x strategies x seeds x parameter grids, expanded into run specs.

A suite file holds `benchmarks`, `strategies` (a list or "all"), `seeds`, optional `overrides`
(`{owner = {field = value}}`) and an optional `grid` (`{"owner.field" = [values]}`); every grid
entry multiplies the runs of the strategy it names (or of all, for `protocol` and `model`).

A run whose valid result file exists is skipped, so an interrupted sweep resumes where it stopped.
A run that fails is recorded in `<name>.failed.json` with its error and the sweep goes on.
"""

from __future__ import annotations

import itertools
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from clbench.errors import ClbenchError, ConfigError
from clbench.params import parse_assignment
from clbench.runner import RunSpec, resolve, run
from clbench.store import read_result, write_json_atomic
from clbench.strategies import STRATEGIES

SUITE_KEYS = {"benchmarks", "strategies", "seeds", "overrides", "grid"}


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
    return suite


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
                chosen = {k: dict(v) for k, v in overrides.items() if k in owners}
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


def run_sweep(
    specs: list[RunSpec], results_dir: Path, say: Callable[[str], None] = print
) -> SweepSummary:
    """Run every spec without a valid result in `results_dir`, one after the other."""
    summary = SweepSummary()
    names = [resolve(spec).name for spec in specs]  # every name and value is checked up front
    for index, (spec, name) in enumerate(zip(specs, names, strict=True), start=1):
        target = results_dir / f"{name}.json"
        if read_result(target) is not None:
            summary.skipped.append(name)
            continue
        say(f"[{index}/{len(specs)}] {name}")
        try:
            run(spec, results_dir, progress=lambda message: say(f"    {message}"))
        except Exception as err:  # one broken run must not stop the sweep
            message = f"{type(err).__name__}: {err}"
            detail = "" if isinstance(err, ClbenchError) else traceback.format_exc()
            write_json_atomic(
                results_dir / f"{name}.failed.json",
                {"name": name, "error": message, "traceback": detail},
            )
            summary.failed[name] = message
            say(f"    failed: {message}")
            continue
        (results_dir / f"{name}.failed.json").unlink(missing_ok=True)
        summary.done.append(name)
    return summary
