import json
import subprocess
import sys

import pytest

from clbench.cli import main


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


def test_bench_svd_options_pass_through_the_cli(capsys):
    assert main(["bench-svd", "--shapes", "64x512", "--repeats", "1"]) == 0
    assert "64x512  gram" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["list", "--repeats", "1"])  # options reach only commands that take them
