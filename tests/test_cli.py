import argparse
import json
import os
import subprocess
import sys

import pytest

from clbench.cli import build_parser, main
from clbench.resolution import TYPED


@pytest.mark.slow
def test_missing_paper_data_exits_nonzero_with_one_line_and_no_traceback(tmp_path):
    command = [
        sys.executable,
        "-m",
        "clbench.cli",
        "run",
        "--benchmark",
        "cifar100-10",
        "--strategy",
        "naive",
        "--data-root",
        str(tmp_path / "data"),
        "--results",
        str(tmp_path / "runs"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clbench: error: CIFAR-100 not found under")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "nope", "--strategy", "naive"], "unknown benchmark 'nope'"),
        (["--benchmark", "split-digits", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["--set", "ewc.lambda=3"], "unknown field ewc.lambda; valid fields of ewc: ewc_lambda"),
        (["--set", "ewc.ewc_lambda=abc"], "ewc.ewc_lambda: 'abc' is not a valid float"),
        (["--set", "protocol.lr=-1"], "protocol.lr=-1.0 must be > 0"),
        (["--set", "gem.memory_strength=1"], "unknown owner 'gem'"),
        (["--model", "alexnet"], "model alexnet expects 3x32x32 inputs"),
        (["--device", "tpu"], "device 'tpu' is not valid"),
    ],
)
def test_bad_input_is_one_readable_line(tmp_path, capsys, argv, message):
    base = ["run", "--results", str(tmp_path)]
    if "--benchmark" not in argv:
        base += ["--benchmark", "split-digits", "--strategy", "ewc"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["run", "--benchmark", "split-digits"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_unwritable_results_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(
        [
            "run",
            "--benchmark",
            "split-digits",
            "--strategy",
            "naive",
            "--results",
            str(blocker / "sub"),
            "--quiet",
        ]
    )
    assert code == 2 and "cannot write results to" in capsys.readouterr().err


def test_list_shows_benchmarks_models_strategies_and_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "split-digits",
        "cifar100-10",
        "alexnet",
        "resnet18-mini",
        "ewc_lambda: float = 100.0",
        "mode: 'separate' | 'online' = 'separate'",
        "lr_factor: float = 2.0",
    ):
        assert expected in out


def test_run_with_overrides_writes_a_result(tmp_path, capsys):
    code = main(
        [
            "run",
            "--benchmark",
            "split-digits",
            "--strategy",
            "ewc",
            "--seed",
            "1",
            "--set",
            "ewc.ewc_lambda=10",
            "--set",
            "protocol.epochs=2",
            "--results",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert result["spec"]["strategy_params"]["ewc_lambda"] == 10.0
    assert result["spec"]["protocol"]["epochs"] == 2 and result["spec"]["seed"] == 1
    assert f"-> {path}" in capsys.readouterr().out
    card = {line["setting"]: line for line in result["card"]}
    assert card["ewc.ewc_lambda"] == {"setting": "ewc.ewc_lambda", "value": 10.0, "source": TYPED}
    assert card["protocol.epochs"]["source"] == TYPED


def test_protocol_prints_the_card_without_data_or_training(tmp_path, capsys):
    argv = ["protocol", "--benchmark", "miniimagenet-20", "--strategy", "trgp"]
    assert main(argv + ["--set", "protocol.epochs=3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("protocol card: trgp on miniimagenet-20, seed 0")
    line = next(row for row in text.splitlines() if "protocol.eval_passes" in row)
    assert line.split()[1:] == ["5", "LYang-666/TRGP", "main_mini_dataset.py:824-828"]
    epochs = next(row for row in text.splitlines() if "protocol.epochs" in row)
    assert epochs.split()[1] == "3" and epochs.endswith(TYPED)
    assert main(argv + ["--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    card = {line["setting"]: line["value"] for line in document["card"]}
    assert card["protocol.epochs"] == 200 and document["spec"]["protocol"]["epochs"] == 200
    assert main(argv + ["--markdown"]) == 0
    assert "| `trgp.trust_samples` | `500` |" in capsys.readouterr().out
    assert main(["protocol", "--benchmark", "pmnist"]) == 2
    assert "needs --benchmark and --strategy" in capsys.readouterr().err
    assert main(argv + ["--set", "trgp.nope=1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bench_svd_options_pass_through_the_cli(capsys):
    assert main(["bench-svd", "--shapes", "64x512", "--repeats", "1"]) == 0
    assert "64x512  gram" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["list", "--repeats", "1"])  # options reach only commands that take them


def test_version_and_suite_listing(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == "clbench 0.1.0"
    assert main(["list", "suites"]) == 0
    listed = capsys.readouterr().out
    assert "default            132 runs: split-mnist5k, pmnist5k;" in listed
    assert "smoke              2 runs: split-digits; naive, ewc; seeds 0" in listed
    assert "benchmarks:" not in listed


def test_summaries_are_whole_sentences(capsys):
    assert main(["list", "strategies"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    summaries = [line.split(None, 1)[1] for line in lines if not line.startswith("     ")]
    assert summaries and all(s.rstrip().endswith((".", ")")) for s in summaries), summaries


@pytest.mark.slow
def test_run_threads_are_set_and_recorded(tmp_path, capsys):
    argv = ["run", "--benchmark", "split-digits", "--strategy", "naive", "--quiet"]
    argv += ["--set", "protocol.epochs=1", "--threads", "2", "--results", str(tmp_path)]
    assert main(argv) == 0
    (path,) = tmp_path.glob("*.json")
    assert json.loads(path.read_text())["environment"]["threads"] == 2
    assert "(points)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main([*argv[:-4], "--threads", "0", "--results", str(tmp_path)])
    assert refused.value.code == 2
    assert "argument --threads: 0 must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "sweep", "bench", "list", "protocol"])
def test_help_documents_every_option(command, capsys):
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = commands.choices[command]
    for action in sub._actions:
        assert action.help, (command, action.option_strings or action.dest)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--help" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_dry_run_with_strategies_seeds_and_set(tmp_path, capsys):
    argv = ["sweep", "smoke", "--results", str(tmp_path), "--strategies", "naive,lwf"]
    argv += ["--seeds", "0,1", "--set", "protocol.epochs=1", "--set", "lwf.alpha=2"]
    assert main([*argv, "--jobs", "1"]) == 0  # run it
    assert "4 runs done" in capsys.readouterr().out
    assert main([*argv, "--dry-run", "--seeds", "0,1,2"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert sum("[present]" in line for line in listed) == 4
    assert sum("[to run]" in line for line in listed) == 2
    assert listed[-1].startswith("2 to run (0 of them stale), 4 present")
    results = json.loads(next(tmp_path.glob("split-digits__lwf__*.json")).read_text())
    assert results["spec"]["strategy_params"]["alpha"] == 2.0
    assert results["spec"]["protocol"]["epochs"] == 1
    assert main([*argv, "--set", "ewc.ewc_lambda=3"]) == 2
    assert "unknown owner 'ewc'; valid: lwf, model, naive, protocol" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_logs_one_line_per_run_without_a_terminal(tmp_path):
    command = [sys.executable, "-m", "clbench.cli", "sweep", "smoke", "--results", str(tmp_path)]
    command += ["--set", "protocol.epochs=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr  # no redraw sequences in a log
    lines = (done.stdout + done.stderr).splitlines()
    assert sum(line.startswith("run ") and " done: split-digits__" in line for line in lines) == 2


@pytest.mark.slow
def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """`clbench list | head -1`: stdout's reader is gone before the listing is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    command = [sys.executable, "-m", "clbench.cli", "list", "strategies"]
    done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""
