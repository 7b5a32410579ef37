"""Training logs (`--log`): what each logger records, on real tiny runs, and that a run's result
does not depend on them."""

import importlib.util
import json
import struct
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from avalanche.core import SupervisedPlugin
from logfiles import read_csv, values
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import clbench.schedule
from clbench.cli import main
from clbench.errors import ConfigError
from clbench.log_kinds import check_log_kinds
from clbench.resolution import RunSpec, resolve
from clbench.runner import prepare, run
from clbench.strategies import StrategyBuild, register_strategy
from clbench.training_log import TrainingLog

# Patience 1 and a high lr_min: some tasks stop early and the lr changes within tasks.
SCHEDULE = {"epochs": 8, "patience": 1, "lr": 0.3, "lr_min": 0.05, "lr_factor": 2}
SPEC = RunSpec("split-digits", "naive", overrides={"protocol": SCHEDULE})
PER_EPOCH = ("task", "epoch", "train/loss", "valid/loss", "lr")
TIMING = ("train_seconds", "eval_seconds")


def logs_of(results: Path, result: dict) -> Path:
    return results / f"{result['name']}.logs"


BLOCK, FULL, LAST = 32768, 1, 4


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "elsewhere"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def wandb_records(path: Path, timeout: float = 60.0) -> list:
    """The records of a `.wandb` file, once wandb's service (a process of its own, which writes
    after the run has returned) has written the run's exit record: after a 7-byte header,
    LevelDB's log format (32 KiB blocks of chunks, each with a 7-byte header: checksum, length,
    type; a record is a FULL chunk or FIRST, MIDDLE... LAST)."""
    deadline = time.monotonic() + timeout
    records = _parsed_records(path)
    while not (records and records[-1].HasField("exit")) and time.monotonic() < deadline:
        time.sleep(0.2)
        records = _parsed_records(path)
    return records


def _parsed_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data, records, pending, pos = path.read_bytes(), [], b"", 7
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # too short for a chunk header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    results = tmp_path_factory.mktemp("logged")
    result = run(SPEC, results, log=["csv", "tensorboard"])
    return results, result, read_csv(logs_of(results, result) / "csv" / "metrics.csv")


def test_csv_has_one_row_of_each_per_epoch_run_at_increasing_x(logged):
    _, result, series = logged
    epochs = [task["epochs"] for task in result["tasks"]]
    assert len(set(epochs)) > 1  # some tasks stopped early: the counts are the ones run
    for name in PER_EPOCH:
        assert [x for x, _ in series[name]] == list(range(1, sum(epochs) + 1)), name
    expected = [(t + 1, e + 1) for t, n in enumerate(epochs) for e in range(n)]
    assert list(zip(values(series, "task"), values(series, "epoch"), strict=True)) == expected


def test_csv_losses_and_lr_are_the_schedules(logged):
    _, result, series = logged
    valid, lrs = values(series, "valid/loss"), values(series, "lr")
    assert all(loss > 0 for loss in values(series, "train/loss"))
    start = 0
    for task in result["tasks"]:
        end = start + task["epochs"]
        task_valid, task_lr = valid[start:end], lrs[start:end]
        assert min(task_valid) == task["best_valid_loss"]
        assert task_lr[0] == SCHEDULE["lr"]
        best = float("inf")
        for e in range(task["epochs"] - 1):  # patience 1: an epoch without progress halves lr
            improved = task_valid[e] < best
            best = min(best, task_valid[e])
            assert task_lr[e + 1] == (task_lr[e] if improved else task_lr[e] / 2)
        start = end
    assert any(lr < SCHEDULE["lr"] for lr in lrs)


def test_csv_accuracies_are_the_matrix_rows(logged):
    _, result, series = logged
    matrix = result["accuracy_matrix"]
    ends = [sum(task["epochs"] for task in result["tasks"][: t + 1]) for t in range(len(matrix))]
    for j in range(len(matrix)):
        logged_column = series[f"test/acc_task{j + 1}"]
        assert logged_column == [(end, row[j]) for end, row in zip(ends, matrix, strict=True)]
    means = [sum(row[: t + 1]) / (t + 1) for t, row in enumerate(matrix)]
    assert [x for x, _ in series["test/acc_mean_seen"]] == ends
    assert values(series, "test/acc_mean_seen") == pytest.approx(means, abs=1e-9)


@dataclass
class PenaltyParams:
    penalty: float = 1.5


class PenaltyAndTrace(SupervisedPlugin):
    """Adds `penalty` to the loss, as a regularising strategy adds its term; keeps each step's
    (loss minimised, batch size) per epoch."""

    def __init__(self, penalty: float) -> None:
        super().__init__()
        self.penalty, self.epochs = penalty, []

    def before_training_epoch(self, strategy, **kwargs):
        self.epochs.append([])

    def before_backward(self, strategy, **kwargs):
        strategy.loss = strategy.loss + self.penalty

    def after_backward(self, strategy, **kwargs):
        self.epochs[-1].append((strategy.loss.item(), len(strategy.mb_y)))


def test_train_loss_is_the_batch_weighted_mean_of_the_loss_minimised(tmp_path, registered):
    plugins = []

    def penalised(model, params: PenaltyParams) -> StrategyBuild:
        plugins.append(PenaltyAndTrace(params.penalty))
        return StrategyBuild(plugins=plugins[-1:])

    register_strategy("test-penalised", penalised)
    spec = RunSpec("split-digits", "test-penalised", overrides={"protocol": {"epochs": 2}})
    result = run(spec, tmp_path, log=["csv"])
    (trace,) = plugins
    assert len({n for epoch in trace.epochs for _, n in epoch}) > 1  # a smaller last batch
    expected = [sum(v * n for v, n in epoch) / sum(n for _, n in epoch) for epoch in trace.epochs]
    logged = values(read_csv(logs_of(tmp_path, result) / "csv" / "metrics.csv"), "train/loss")
    assert logged == pytest.approx(expected, rel=1e-6)
    assert min(logged) > 1.5  # the strategy's term counts


def test_tensorboard_holds_the_same_scalars(logged):
    results, result, series = logged
    events = EventAccumulator(str(logs_of(results, result) / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == set(series)
    for tag in tags:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [x for x, _ in series[tag]], tag
        assert [s.value for s in scalars] == pytest.approx(values(series, tag), rel=1e-6), tag


def test_logging_changes_neither_the_result_nor_its_name(logged, tmp_path):
    results, result, _ = logged
    plain = run(SPEC, tmp_path)
    assert plain["name"] == result["name"]
    assert [p.name for p in tmp_path.iterdir()] == [f"{plain['name']}.json"]

    def content(document):
        drop = ("environment", "finished_at")
        kept = {key: value for key, value in document.items() if key not in drop}
        kept["tasks"] = [{k: v for k, v in t.items() if k not in TIMING} for t in kept["tasks"]]
        return kept

    written = json.loads((results / f"{result['name']}.json").read_text())
    assert content(written) == content(json.loads((tmp_path / f"{plain['name']}.json").read_text()))


def test_without_log_no_plugin_is_added():
    prepared = prepare(resolve(SPEC))
    assert prepared.training_log is None
    assert not any(isinstance(p, TrainingLog) for p in prepared.template.plugins)


def test_logs_need_a_results_folder_and_known_kinds(monkeypatch):
    with pytest.raises(ConfigError, match="--log csv: training logs are written beside"):
        run(SPEC, None, log=["csv"])
    with pytest.raises(ConfigError, match="unknown --log 'bogus'; valid: csv, tensorboard, wandb"):
        check_log_kinds(["csv", "bogus"])
    assert check_log_kinds(["csv", "tensorboard", "csv"]) == ("csv", "tensorboard")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name)
    )
    with pytest.raises(
        ConfigError, match=r"needs the wandb package: pip install 'clbench\[wandb\]'"
    ):
        check_log_kinds(["wandb"])


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_unknown_kind_is_one_line_naming_it_and_the_valid_ones(tmp_path, capsys, command):
    argv = ["run", "--benchmark", "split-digits", "--strategy", "naive"]
    if command == "sweep":
        argv = ["sweep", "smoke", "--set", "protocol.epochs=1"]
    assert main([*argv, "--results", str(tmp_path), "--log", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err == "clbench: error: unknown --log 'bogus'; valid: csv, tensorboard, wandb\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_sweep_writes_the_logs_of_every_run(tmp_path, capsys):
    argv = ["sweep", "smoke", "--results", str(tmp_path), "--set", "protocol.epochs=1"]
    assert main([*argv, "--log", "csv", "--jobs", "2"]) == 0  # through the worker processes
    assert "2 runs done" in capsys.readouterr().out
    documents = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
    assert sorted(d["spec"]["strategy"] for d in documents) == ["ewc", "naive"]
    for document in documents:
        series = read_csv(logs_of(tmp_path, document) / "csv" / "metrics.csv")
        assert values(series, "epoch") == [1.0] * len(document["accuracy_matrix"])


@pytest.mark.slow
def test_a_failed_run_keeps_what_it_logged(tmp_path, monkeypatch, offline_wandb):
    real, calls = clbench.schedule.validation_loss, []

    def fails_at_the_fourth_epoch(*args):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("stopped by the test")
        return real(*args)

    monkeypatch.setattr(clbench.schedule, "validation_loss", fails_at_the_fourth_epoch)
    spec = RunSpec("split-digits", "naive", overrides={"protocol": {"epochs": 3}})
    with pytest.raises(RuntimeError, match="stopped by the test"):
        run(spec, tmp_path, log=["csv", "tensorboard", "wandb"])
    (logs,) = tmp_path.glob("*.logs")
    assert not list(tmp_path.glob("*.json"))
    series = read_csv(logs / "csv" / "metrics.csv")
    assert values(series, "task") == [1, 1, 1]  # task 2's first epoch did not end
    assert [x for x, _ in series["test/acc_task1"]] == [3]
    events = EventAccumulator(str(logs / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("train/loss")] == [1, 2, 3]
    (history_file,) = (logs / "wandb").glob("offline-run-*/run-*.wandb")
    assert wandb_records(history_file)[-1].exit.exit_code == 1  # finished, as failed


def test_wandb_offline_records_the_history_and_finishes(tmp_path, offline_wandb):
    results = tmp_path / "runs"
    argv = ["run", "--benchmark", "split-digits", "--strategy", "naive", "--quiet"]
    argv += ["--set", "protocol.epochs=2", "--results", str(results), "--log", "csv"]
    assert main([*argv, "--log", "wandb"]) == 0
    (document,) = [json.loads(p.read_text()) for p in results.glob("*.json")]
    logs = logs_of(results, document)
    (offline,) = (logs / "wandb").glob("offline-run-*")
    (history_file,) = offline.glob("run-*.wandb")
    records = wandb_records(history_file)
    assert records[-1].WhichOneof("record_type") == "exit"  # wandb.finish ran
    assert records[-1].exit.exit_code == 0
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run_record.display_name == document["name"] and run_record.project == "clbench"
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {
                item.key or "/".join(item.nested_key): item.value_json
                for item in record.history.item
            }
            history[int(row.pop("_step"))] = {
                k: json.loads(v) for k, v in row.items() if k[0] != "_"
            }
    series = read_csv(logs / "csv" / "metrics.csv")
    expected = defaultdict(dict)
    for name, points in series.items():
        for x, value in points:
            expected[x][name] = value
    assert history == expected
