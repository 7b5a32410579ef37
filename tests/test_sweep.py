import json
from dataclasses import dataclass

import pytest

from clbench.errors import ConfigError
from clbench.resolution import RunSpec, resolve
from clbench.strategies import STRATEGIES, StrategyBuild, register_strategy
from clbench.sweep import expand, load_suite, run_sweep


def test_default_suite_covers_every_zoo_strategy_on_the_offline_benchmarks():
    specs = expand(load_suite("default"))
    strategies = {
        name
        for name, strategy in STRATEGIES.items()
        if strategy.factory.__module__.startswith(("baselines.", "clbench."))
    }
    assert {(s.benchmark, s.strategy, s.seed) for s in specs} == {
        (b, s, seed)
        for b in ("split-mnist5k", "pmnist5k")
        for s in strategies
        for seed in (0, 1, 2)
    }
    bases = {s.overrides["gpcns"]["base"] for s in specs if s.strategy == "gpcns"}
    assert bases == {"gpm", "sgp", "trgp"}
    assert sum(s.strategy == "gpcns" for s in specs) == 2 * 3 * 3


def test_suite_errors_name_what_is_valid(tmp_path):
    with pytest.raises(ConfigError, match="unknown suite 'nope'; shipped suites: default"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('benchmarks = ["split-digits"]\nseed = [1]\n')
    with pytest.raises(ConfigError, match="unknown key 'seed'; valid: benchmarks, grid, overrides"):
        load_suite(str(bad))


def test_failed_runs_are_recorded_and_finished_runs_are_skipped(tmp_path):
    quick = {"protocol": {"epochs": 2}}
    specs = [
        RunSpec("cifar100-10", "naive", data_root=str(tmp_path / "no-data")),
        RunSpec("split-digits", "naive", overrides=quick),
    ]
    messages = []
    first = run_sweep(specs, tmp_path / "runs", say=messages.append)
    assert len(first.done) == 1 and len(first.failed) == 1
    (failure,) = (tmp_path / "runs").glob("*.failed.json")
    assert "MissingDataError: CIFAR-100 not found" in json.loads(failure.read_text())["error"]
    second = run_sweep(specs, tmp_path / "runs", say=messages.append)
    assert second.skipped == first.done and len(second.failed) == 1


def test_grids_multiply_only_the_runs_of_the_strategy_they_name(tmp_path):
    suite = tmp_path / "grid.toml"
    suite.write_text(
        'benchmarks = ["split-digits"]\nstrategies = ["naive", "ness"]\nseeds = [0, 1]\n'
        "overrides = { protocol = { epochs = 2 } }\n"
        'grid = { "ness.eps1" = [0.001, 0.01], "protocol.lr" = [0.1, 0.2] }\n'
    )
    specs = expand(load_suite(str(suite)))
    naive = [s for s in specs if s.strategy == "naive"]
    ness = [s for s in specs if s.strategy == "ness"]
    assert len(naive) == 2 * 2 and len(ness) == 2 * 2 * 2
    assert {(s.overrides["ness"]["eps1"], s.overrides["protocol"]["lr"]) for s in ness} == {
        (0.001, 0.1),
        (0.001, 0.2),
        (0.01, 0.1),
        (0.01, 0.2),
    }
    assert all(s.overrides["protocol"]["epochs"] == 2 for s in specs)
    names = {resolve(s).name for s in specs}
    assert len(names) == len(specs)  # every grid point is its own result file


def test_suite_presets_sit_between_shipped_presets_and_overrides(tmp_path):
    suite = tmp_path / "presets.toml"
    suite.write_text(
        'benchmarks = ["split-digits", "split-mnist5k"]\nstrategies = ["naive", "ness"]\n'
        "overrides = { protocol = { lr = 0.3 } }\n"
        "[presets.split-digits]\n"
        "protocol = { epochs = 3, lr = 0.2 }\n"
        "strategies.ness = { eps1 = 0.01 }\n"
        "strategy_protocol.ness = { epochs = 4 }\n"
    )
    specs = {(s.benchmark, s.strategy): resolve(s) for s in expand(load_suite(str(suite)))}
    assert specs["split-digits", "naive"].protocol.epochs == 3
    assert specs["split-digits", "ness"].protocol.epochs == 4
    assert specs["split-digits", "ness"].strategy_params.eps1 == 0.01
    naive = [run for (_, strategy), run in specs.items() if strategy == "naive"]
    assert all(run.protocol.lr == 0.3 for run in naive)  # overrides win over presets
    # NESS's own lr_scale (0.1, with its momentum 0.9) wins over the benchmark-wide lr
    assert specs["split-digits", "ness"].protocol.lr == specs["split-mnist5k", "ness"].protocol.lr
    assert specs["split-digits", "ness"].protocol.lr == 0.03
    assert specs["split-mnist5k", "naive"].protocol.epochs == 10  # the shipped preset
    bad = tmp_path / "bad.toml"
    bad.write_text('benchmarks = ["split-digits"]\n[presets.split-digits]\nprotocl = {}\n')
    with pytest.raises(ConfigError, match="presets.split-digits: unknown key 'protocl'"):
        load_suite(str(bad))


@dataclass
class NoParams:
    """No parameters."""


def outside(model, params: NoParams) -> StrategyBuild:
    """An outside strategy."""
    return StrategyBuild()


def test_an_installed_outside_strategy_does_not_change_the_default_suite(registered):
    before = [(s.benchmark, s.strategy, s.seed) for s in expand(load_suite("default"))]
    register_strategy("outside-extra", outside)
    after = [(s.benchmark, s.strategy, s.seed) for s in expand(load_suite("default"))]
    offline = {s.strategy for s in expand(load_suite("offline-full"))}
    assert after == before and "outside-extra" not in {s for _, s, _ in after}
    assert "outside-extra" in offline  # a suite that says "all" does take it
