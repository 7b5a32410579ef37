"""Executors: the local pool, kill and resume, failures, Ray and submitit where installed."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from logfiles import read_csv, values

from clbench.errors import ClbenchError, ConfigError
from clbench.executors import ExecutorOptions, make_executor
from clbench.resolution import RunSpec, resolve
from clbench.store import read_result
from clbench.sweep import expand, load_suite, run_sweep, sweep_lock

QUICK = {"protocol": {"epochs": 2}}


def quick_specs(*strategies, seeds=(0,)):
    return [
        RunSpec("split-digits", s, seed=seed, overrides=QUICK) for s in strategies for seed in seeds
    ]


def assert_complete(results_dir, specs, logged=False):
    """Every spec has exactly one valid result and, where the runs were `logged`, its log;
    nothing else is left behind."""
    names = {resolve(spec).name for spec in specs}
    files = {p.name for p in results_dir.iterdir() if not p.name.startswith(".sweep.lock")}
    logs = {f"{name}.logs" for name in names} if logged else set()
    assert files == {f"{name}.json" for name in names} | logs
    for name in names:
        assert read_result(results_dir / f"{name}.json") is not None
        if logged:
            assert_logged(results_dir, name)


def assert_logged(results_dir, name):
    """The run `name` wrote its CSV log (`--log csv`): rows of each of the 5 tasks, in order."""
    tasks = values(read_csv(results_dir / f"{name}.logs" / "csv" / "metrics.csv"), "task")
    assert sorted(set(tasks)) == [1, 2, 3, 4, 5] and tasks == sorted(tasks)


@pytest.mark.slow
def test_local_pool_gives_the_same_numbers_as_the_foreground(tmp_path):
    specs = quick_specs("naive", "ewc", "lwf")
    pool = run_sweep(specs, tmp_path / "pool", make_executor(ExecutorOptions(jobs=2)))
    alone = run_sweep(specs[:1], tmp_path / "alone", make_executor(ExecutorOptions(jobs=1)))
    assert len(pool.done) == 3 and not pool.failed and len(alone.done) == 1
    assert_complete(tmp_path / "pool", specs)
    name = resolve(specs[0]).name
    first = read_result(tmp_path / "pool" / f"{name}.json")
    second = read_result(tmp_path / "alone" / f"{name}.json")
    assert first["accuracy_matrix"] == second["accuracy_matrix"]
    assert first["environment"]["threads"] == 1  # one thread per worker by default


@pytest.mark.slow
def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path):
    specs = [
        RunSpec("cifar100-10", "naive", data_root=str(tmp_path / "no-data")),
        RunSpec("split-digits", "naive", overrides={"protocol": {"epochs": 1, "lr": 1e12}}),
        *quick_specs("naive"),
    ]
    summary = run_sweep(specs, tmp_path / "runs", make_executor(ExecutorOptions(jobs=2)))
    assert len(summary.done) == 1
    errors = sorted(summary.failed.values())
    assert errors[0].startswith("MissingDataError: CIFAR-100 not found")
    assert errors[1].startswith("TrainingDiverged: loss ")
    assert "at task 1, epoch 1" in errors[1]
    for name, error in summary.failed.items():
        recorded = json.loads((tmp_path / "runs" / f"{name}.failed.json").read_text())
        assert recorded["error"] == error


SUITE = """benchmarks = ["split-digits"]
strategies = ["naive", "ewc"]
seeds = [0, 1]
overrides = { protocol = { epochs = 2 } }
"""


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    results = tmp_path / "runs"
    command = [
        sys.executable, "-m", "clbench.cli", "sweep", str(suite),
        "--results", str(results), "--jobs", "2",
    ]  # fmt: skip
    sweep = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not list(results.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its workers, mid-run
    sweep.wait()
    finished_before = len([p for p in results.glob("*.json") if read_result(p)])
    specs = expand(load_suite(str(suite)))
    assert 1 <= finished_before < len(specs)

    restart = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert restart.returncode == 0, restart.stderr
    left = len(specs) - finished_before
    assert f"{finished_before} runs already have a valid result; {left} to run" in restart.stdout
    # no terminal: one line per finished run instead of a progress bar
    assert f"run {left}/{left} done: " in restart.stdout
    assert_complete(results, specs)


def test_one_sweep_per_results_folder(tmp_path):
    with sweep_lock(tmp_path), pytest.raises(ClbenchError, match="another sweep is writing"):
        run_sweep(quick_specs("naive"), tmp_path)


def test_executor_errors_name_the_fix(monkeypatch):
    with pytest.raises(ConfigError, match="unknown executor 'dask'; valid: local, ray, submitit"):
        make_executor(ExecutorOptions(name="dask"))
    with pytest.raises(ConfigError, match="--jobs 0"):
        make_executor(ExecutorOptions(jobs=0))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "ray" else real(name)
    )
    with pytest.raises(ConfigError, match=r"needs the ray package: pip install 'clbench\[ray\]'"):
        make_executor(ExecutorOptions(name="ray"))


@pytest.mark.slow
def test_ray_runs_a_sweep_on_a_local_instance_and_its_runs_write_their_logs(tmp_path):
    pytest.importorskip("ray")
    specs = quick_specs("naive", "ewc")
    options = ExecutorOptions(name="ray", jobs=2, log=("csv",))
    summary = run_sweep(specs, tmp_path, make_executor(options))
    assert len(summary.done) == 2 and not summary.failed
    assert_complete(tmp_path, specs, logged=True)


@pytest.mark.slow
def test_submitit_runs_a_job_array_in_local_mode_and_its_runs_write_their_logs(tmp_path):
    pytest.importorskip("submitit")
    specs = quick_specs("naive", "ewc")
    options = ExecutorOptions(
        name="submitit", submitit_cluster="local", jobs=2, timeout_min=10, log=("csv",)
    )
    results = tmp_path / "runs"
    summary = run_sweep(specs, results, make_executor(options))
    assert len(summary.done) == 2 and not summary.failed
    names = {resolve(spec).name for spec in specs}
    assert {p.stem for p in results.glob("*.json")} == names
    for name in names:
        assert read_result(results / f"{name}.json")
        assert_logged(results, name)


def test_a_foreground_run_shows_a_bar_over_each_tasks_epochs(tmp_path, capsys, monkeypatch):
    run_sweep(quick_specs("naive"), tmp_path / "log", make_executor(ExecutorOptions(jobs=1)))
    assert "task 1/5:" not in capsys.readouterr().err  # not a terminal: no bars
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run_sweep(quick_specs("naive"), tmp_path, make_executor(ExecutorOptions(jobs=1)))
    err = capsys.readouterr().err
    for task in range(1, 6):  # each task opens a bar over its 2 epochs
        assert f"task {task}/5:   0%|          | 0/2" in err
    assert "runs: 100%" in err and "1/1" in err
