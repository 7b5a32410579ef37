"""Reliability: corrupt results are redone, bad input leaves results untouched, checkpoints load
without unpickling code."""

import hashlib
import json

import pytest
import torch

from clbench.cli import main
from clbench.data import BENCHMARKS, DataOptions
from clbench.executors import ExecutorOptions, make_executor
from clbench.models import ModelParams, build_model
from clbench.resolution import RunSpec, resolve
from clbench.store import read_result
from clbench.sweep import run_sweep
from results import write_result

QUICK = {"protocol": {"epochs": 1}}


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "garble", "empty"])
def test_a_damaged_result_is_detected_and_redone_by_the_next_sweep(tmp_path, damage):
    spec = RunSpec("split-digits", "naive", overrides=QUICK)
    pool = make_executor(ExecutorOptions(jobs=1))
    run_sweep([spec], tmp_path, pool)
    path = tmp_path / f"{resolve(spec).name}.json"
    good = path.read_text()
    path.write_text(
        {"truncate": good[: len(good) // 2], "garble": good.replace("[", "{", 3)}.get(damage, "")
    )
    assert read_result(path) is None
    again = run_sweep([spec], tmp_path, pool)
    assert again.done == [resolve(spec).name] and read_result(path) is not None
    assert read_result(path)["accuracy_matrix"] == json.loads(good)["accuracy_matrix"]


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


SUITE_UNKNOWN = 'benchmarks = ["nope"]\nstrategies = ["naive"]\nseeds = [0]\n'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--benchmark", "nope", "--strategy", "naive"], "unknown benchmark 'nope'"),
        (["run", "--benchmark", "split-digits", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["run", "--benchmark", "split-digits", "--strategy", "gpm", "--set", "gpm.tresh=1"],
         "unknown field gpm.tresh"),
        (["run", "--benchmark", "split-digits", "--strategy", "gpm", "--set", "gpm.samples=many"],
         "gpm.samples: 'many' is not a valid int"),
        (["run", "--benchmark", "split-digits", "--strategy", "gpm", "--set", "gpm.threshold=1.5"],
         "threshold value 1.5 must lie in (0, 1]"),
        (["run", "--benchmark", "cifar100-10", "--strategy", "naive", "--no-download",
          "--data-root", "MISSING"], "CIFAR-100 not found under"),
        (["sweep", "SUITE", "--jobs", "2"], "unknown benchmark 'nope'"),
        (["sweep", "no-such-suite"], "unknown suite 'no-such-suite'"),
        (["sweep", "smoke", "--executor", "dask"], "unknown executor 'dask'"),
        (["bench", "--suite", "SUITE"], "unknown benchmark 'nope'"),
        (["report", "MISSING"], "results folder"),
    ],
)  # fmt: skip
def test_bad_input_exits_with_one_line_and_leaves_results_untouched(
    tmp_path, capsys, argv, message
):
    results = tmp_path / "runs"
    write_result(results, "split-digits", "naive", 0, [[90, 0], [80, 95]])
    before = _snapshot(results)
    suite = tmp_path / "unknown.toml"
    suite.write_text(SUITE_UNKNOWN)
    argv = [
        {"SUITE": str(suite), "MISSING": str(tmp_path / "missing")}.get(arg, arg) for arg in argv
    ]
    if argv[0] != "report":
        argv += ["--results", str(results)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert _snapshot(results) == before


def test_an_unwritable_results_folder_is_one_line_for_sweeps_too(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sweep", "smoke", "--results", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write results to" in err


def test_checkpoints_load_with_weights_only_and_reproduce_the_accuracies(tmp_path, capsys):
    argv = ["run", "--benchmark", "split-digits", "--strategy", "ewc", "--set", "protocol.epochs=2"]
    assert main([*argv, "--results", str(tmp_path), "--quiet", "--checkpoints"]) == 0
    (result_path,) = tmp_path.glob("*.json")
    result = read_result(result_path)
    folder = tmp_path / f"{result['name']}.ckpt"
    assert sorted(p.name for p in folder.iterdir()) == [f"task{t}.pt" for t in range(1, 6)]
    checkpoint = torch.load(folder / "task5.pt", weights_only=True)
    assert checkpoint["task"] == 5
    model = build_model("mlp", (1, 8, 8), 5, 2, ModelParams())
    model.load_state_dict(checkpoint["state_dict"])
    # The final model re-evaluated on task 1's test set gives the last row's first entry.
    task = BENCHMARKS.get("split-digits").build(DataOptions(tmp_path, False, 0)).tasks[0]
    model.eval()
    with torch.no_grad():
        predicted = model(task.x_test.float(), torch.zeros(len(task.y_test), dtype=torch.long))
    accuracy = float((predicted.argmax(1) == task.y_test).float().mean())
    assert 100 * accuracy == pytest.approx(result["accuracy_matrix"][-1][0])
