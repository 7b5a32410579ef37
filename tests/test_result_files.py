"""What result files record: the accuracy of the model before training (shared head only, without
changing any accuracy of the run), joint training's kept samples, file modes, the sweep's job
count, and tasks numbered from 1."""

import json
import os
import time
from pathlib import Path

import pytest
import torch

import clbench.runner
from clbench.cli import main
from clbench.data import BENCHMARKS, DataOptions
from clbench.metrics import forward_transfer
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.store import (
    RESULT_FORMAT,
    read_result,
    validate_result,
    write_failure,
    write_json_atomic,
)

# pmnist5k (ten tasks, one shared head) in seconds: one epoch of large batches, a rate that learns.
PMNIST_QUICK = {"protocol": {"epochs": 1, "batch_size": 200, "lr": 0.1}}
DIGITS_QUICK = {"protocol": {"epochs": 1}}


def _without_seconds(tasks):
    return [{k: v for k, v in task.items() if not k.endswith("_seconds")} for task in tasks]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["naive", "trgp"])
def test_the_initial_evaluation_changes_no_accuracy_and_no_task_record(monkeypatch, strategy):
    """TRGP switches its per-task scales in Avalanche's eval hooks: the initial evaluation must
    leave them, the random streams and the data order alone."""
    overrides = dict(PMNIST_QUICK)
    if strategy == "trgp":  # few samples for its bases and trust region: quick
        overrides["trgp"] = {"samples": 40, "trust_samples": 40}
    measured = run(RunSpec("pmnist5k", strategy, overrides=overrides))

    def slow_stub(model, datasets, batch_size):
        time.sleep(1.0)
        return [50.0] * len(datasets)

    monkeypatch.setattr(clbench.runner, "initial_accuracies", slow_stub)
    skipped = run(RunSpec("pmnist5k", strategy, overrides=overrides))
    assert measured["accuracy_matrix"] == skipped["accuracy_matrix"]
    assert _without_seconds(measured["tasks"]) == _without_seconds(skipped["tasks"])
    initial = measured["initial_accuracy"]
    assert len(initial) == 10 and all(0 <= b <= 100 for b in initial)
    assert len(set(initial)) > 1  # measured per task, not a constant
    assert measured["metrics"]["forward_transfer"] == forward_transfer(
        measured["accuracy_matrix"], initial
    )
    assert skipped["tasks"][0]["eval_seconds"] >= 1.0  # it counts in the first task's evaluation
    if strategy == "trgp":  # old tasks numbered from 1, each before the task that used it
        chosen = [
            (j, task["task"])
            for task in measured["tasks"]
            for old in task["trust_region"].values()
            for j in old
        ]
        assert chosen and all(1 <= j < number for j, number in chosen)


def test_forward_transfer_is_recomputed_from_the_stored_initial_accuracy(tmp_path):
    result = run(RunSpec("pmnist5k", "naive", overrides=PMNIST_QUICK), tmp_path)
    path = tmp_path / f"{result['name']}.json"
    document = json.loads(path.read_text())
    document["initial_accuracy"] = [0.0] * 10
    document["metrics"]["forward_transfer"] = -1.0
    path.write_text(json.dumps(document))
    matrix = result["accuracy_matrix"]
    expected = sum(matrix[j - 1][j] for j in range(1, 10)) / 9
    assert read_result(path)["metrics"]["forward_transfer"] == pytest.approx(expected)
    assert validate_result({**document, "initial_accuracy": [0.0] * 9}) == (
        "initial_accuracy and accuracy_matrix disagree on the number of tasks"
    )


def test_a_multi_head_run_has_no_initial_accuracy_nor_forward_transfer():
    result = run(RunSpec("split-digits", "naive", overrides=DIGITS_QUICK))
    assert "initial_accuracy" not in result
    assert "forward_transfer" not in result["metrics"]
    assert "average_incremental_accuracy" in result["metrics"]


def test_joint_counts_every_sample_it_keeps_to_train_on_again():
    joint = run(RunSpec("split-digits", "joint", overrides=DIGITS_QUICK))
    naive = run(RunSpec("split-digits", "naive", overrides=DIGITS_QUICK))
    tasks = BENCHMARKS.get("split-digits").build(DataOptions(Path("data"), False, 0)).tasks
    # a sample as read: float32 pixels, its label and its task label (8 bytes each)
    per_sample = tasks[0].x_train[0].numel() * 4 + 2 * 8
    so_far = [sum(len(task.y_train) for task in tasks[: t + 1]) for t in range(len(tasks))]
    assert [task["kept_bytes"] for task in joint["tasks"]] == [n * per_sample for n in so_far]
    assert joint["tasks"][-1]["kept_bytes"] == 1437 * (64 * 4 + 16) > 0  # 80 % of 1,797 digits
    assert all(task["kept_bytes"] == 0 for task in naive["tasks"])


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_result_and_failure_files_get_the_mode_of_a_new_file(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
        write_failure(tmp_path, "x", "Error: one line")
    finally:
        os.umask(previous)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "x.failed.json").stat().st_mode & 0o777 == mode


@pytest.mark.slow
def test_results_record_how_many_runs_their_sweep_ran_at_a_time(tmp_path):
    argv = ["run", "--benchmark", "split-digits", "--strategy", "naive", "--quiet"]
    assert main([*argv, "--set", "protocol.epochs=1", "--results", str(tmp_path / "one")]) == 0
    (path,) = (tmp_path / "one").glob("*.json")
    assert read_result(path)["environment"]["jobs"] == 1
    suite = tmp_path / "tiny.toml"
    suite.write_text(
        'benchmarks = ["split-digits"]\nstrategies = ["naive"]\nseeds = [0, 1]\n'
        "overrides = { protocol = { epochs = 1 } }\n"
    )
    assert main(["sweep", str(suite), "--results", str(tmp_path / "two"), "--jobs", "2"]) == 0
    paths = sorted((tmp_path / "two").glob("*.json"))
    assert len(paths) == 2
    assert [read_result(p)["environment"]["jobs"] for p in paths] == [2, 2]


def test_tasks_are_numbered_from_1_in_results_checkpoints_and_progress(tmp_path):
    lines = []
    spec = RunSpec("split-digits", "naive", overrides=DIGITS_QUICK)
    result = run(spec, tmp_path, progress=lines.append, checkpoints=True)
    assert result["format"] == RESULT_FORMAT == 4
    assert [task["task"] for task in result["tasks"]] == [1, 2, 3, 4, 5]
    assert [task["name"] for task in result["tasks"]] == [f"digits-{t}" for t in range(1, 6)]
    assert [line.split(":")[0] for line in lines] == [f"task {t}/5" for t in range(1, 6)]
    folder = tmp_path / f"{result['name']}.ckpt"
    assert sorted(p.name for p in folder.iterdir()) == [f"task{t}.pt" for t in range(1, 6)]
    assert torch.load(folder / "task1.pt", weights_only=True)["task"] == 1


def test_a_result_of_the_previous_format_is_invalid(tmp_path):
    result = run(RunSpec("split-digits", "naive", overrides=DIGITS_QUICK), tmp_path)
    path = tmp_path / f"{result['name']}.json"
    document = json.loads(path.read_text())
    assert validate_result(document) is None
    assert validate_result({**document, "format": 3}) == "format 3 (expected 4)"
