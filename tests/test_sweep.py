import json

import pytest

from clbench.errors import ConfigError
from clbench.runner import RunSpec
from clbench.strategies import STRATEGIES
from clbench.sweep import expand, load_suite, run_sweep


def test_default_suite_covers_every_strategy_on_the_offline_benchmarks():
    specs = expand(load_suite("default"))
    strategies = {name for name, _ in STRATEGIES.items()}
    assert {(s.benchmark, s.strategy, s.seed) for s in specs} == {
        (b, s, seed)
        for b in ("split-mnist5k", "pmnist5k")
        for s in strategies
        for seed in (0, 1, 2)
    }


def test_suite_errors_name_what_is_valid(tmp_path):
    with pytest.raises(ConfigError, match="unknown suite 'nope'; shipped suites: default"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('benchmarks = ["split-digits"]\nseed = [1]\n')
    with pytest.raises(ConfigError, match="unknown key 'seed'; valid: benchmarks, overrides"):
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
