"""Bad input met through the command line: every case is one line on stderr naming the bad value
and what is valid, exit status 2, no traceback, and nothing written. Each case gave a traceback
(or was silently accepted) before these checks existed."""

from __future__ import annotations

import pytest

from clbench.cli import main


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI on `argv`; the single stderr line it printed for its exit status 2."""
    try:
        code = main(argv)
    except SystemExit as stopped:  # argparse's usage errors
        code = stopped.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


RUN = ["run", "--benchmark", "split-digits", "--strategy", "naive", "--quiet"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "-1"], "seed -1 is not a valid seed; use an integer from 0 to 4294967295"),
        (["--seed", "4294967296"], "seed 4294967296 is not a valid seed"),
        (["--seed", "x"], "'x' is not an integer seed"),
        (["--set", "protocol.pc_valid=0.999"], "protocol.pc_valid=0.999 leaves no training"),
        (["--model", "resnet18"], "model resnet18 does not fit the benchmark's 1x8x8 images"),
        (["--threads", "0"], "argument --threads: 0 must be at least 1"),
        (["--data-root", ""], "argument --data-root: an empty path is not a folder"),
    ],
)
def test_run_rejects_bad_values_in_one_line(tmp_path, capsys, argv, message):
    err = one_line_error(capsys, [*RUN, "--results", str(tmp_path / "runs"), *argv])
    assert message in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_empty_results_path_is_refused_not_taken_for_the_current_folder(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, [*RUN, "--results", ""])
    assert "argument --results: an empty path is not a folder" in err
    assert list(tmp_path.iterdir()) == []


def test_the_model_error_names_the_models_that_fit(tmp_path, capsys):
    err = one_line_error(capsys, [*RUN, "--results", str(tmp_path), "--model", "resnet18"])
    assert err.rstrip().endswith("models that take it: mlp, small-cnn")


def test_protocol_card_rejects_a_bad_seed(capsys):
    argv = ["protocol", "--benchmark", "split-digits", "--strategy", "naive", "--seed", "-3"]
    assert "seed -3 is not a valid seed" in one_line_error(capsys, argv)


SUITE_HEAD = 'benchmarks = ["split-digits"]\nstrategies = ["naive"]\n'


def suite_error(tmp_path, capsys, text: bytes) -> str:
    """The one-line error of a dry-run sweep of a suite file holding `text`."""
    suite = tmp_path / "suite.toml"
    suite.write_bytes(text)
    argv = ["sweep", str(suite), "--results", str(tmp_path / "runs"), "--dry-run"]
    return one_line_error(capsys, argv)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('seeds = ["a"]', "seeds entry 'a' is not a valid seed"),
        ("seeds = [1.5]", "seeds entry 1.5 is not a valid seed"),
        ("seeds = [-1]", "seeds entry -1 is not a valid seed"),
        ("seeds = [true]", "seeds entry True is not a valid seed"),
        ("seeds = []", "seeds = [] must be a non-empty list of integers"),
        ("seeds = 3", "seeds = 3 must be a non-empty list of integers"),
        ("overrides = { nope = { epochs = 1 } }", "overrides.nope: unknown owner"),
        ("overrides = { protocol = 5 }", "overrides.protocol = 5 must be a table"),
        ("overrides = 5", "overrides = 5 must be a table"),
        ("[presets.nope]\nprotocol = { epochs = 1 }", "presets.nope names no benchmark"),
        ("presets = 5", "presets = 5 must be a table"),
        ("[presets.split-digits]\nprotocol = 3", "presets.split-digits.protocol = 3 must be"),
        ("[presets.split-digits]\nnope = 3", "presets.split-digits: unknown key 'nope'"),
        ("[presets.split-digits.strategies]\nnaive = 3", "strategies.naive = 3 must be a table"),
        ("[presets.split-digits.strategies]\ngpm = {}", "strategies.gpm names no strategy"),
        ('grid = { "protocol.lr" = 0.1 }', "grid.protocol.lr = 0.1 must be a non-empty list"),
        ('grid = { "nope.lr" = [0.1] }', "grid key 'nope.lr' must be OWNER.FIELD"),
        ("grid = 5", "grid = 5 must be a table"),
        ("nope = 1", "unknown key 'nope'"),
        ('overrides = { protocol = { epochs = "x" } }', "protocol.epochs: 'x' is not a valid int"),
        ("overrides = { protocol = { nope = 1 } }", "unknown field protocol.nope"),
    ],
)
def test_suite_files_with_wrong_keys_or_types_are_one_line(tmp_path, capsys, body, message):
    assert message in suite_error(tmp_path, capsys, (SUITE_HEAD + body + "\n").encode())
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('benchmarks = "split-digits"\n', "benchmarks = 'split-digits' must be a list"),
        ("benchmarks = [1]\n", "benchmarks = [1] must be a list of benchmark names"),
        ('benchmarks = ["nope"]\n', "unknown benchmark 'nope'"),
        ('benchmarks = ["split-digits"]\nstrategies = 3\n', "strategies = 3 must be a list"),
        ('benchmarks = ["split-digits"]\nstrategies = ["no"]\n', "unknown strategy 'no'"),
    ],
)
def test_suite_names_must_be_registered(tmp_path, capsys, text, message):
    assert message in suite_error(tmp_path, capsys, text.encode())


def test_a_suite_that_is_not_utf8_is_one_line(tmp_path, capsys):
    text = b'benchmarks = ["split-digits"]\nseeds = [\xff]\n'
    assert "not UTF-8 text" in suite_error(tmp_path, capsys, text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "-1"], "--seeds entry -1 is not a valid seed"),
        (["--jobs", "0"], "argument --jobs: 0 must be at least 1"),
        (["--results", ""], "argument --results: an empty path is not a folder"),
    ],
)
def test_sweep_arguments_are_checked(tmp_path, capsys, argv, message):
    base = ["sweep", "smoke", "--dry-run"]
    if "--results" not in argv:
        base += ["--results", str(tmp_path / "runs")]
    assert message in one_line_error(capsys, [*base, *argv])


def test_new_strategy_refuses_names_and_folders_it_cannot_write(tmp_path, capsys):
    keyword = one_line_error(capsys, ["new-strategy", "class", "--dir", str(tmp_path)])
    assert "'class' is a Python keyword" in keyword
    long = one_line_error(capsys, ["new-strategy", "a" * 300, "--dir", str(tmp_path)])
    assert "use at most 64 lower-case letters" in long and "a" * 81 not in long
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    as_dir = one_line_error(capsys, ["new-strategy", "my-method", "--dir", str(blocker)])
    assert f"--dir {blocker} is a file" in as_dir
    below = one_line_error(capsys, ["new-strategy", "my-method", "--dir", str(blocker / "sub")])
    assert "cannot write" in below
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert blocker.read_text() == "keep"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench-overhead", "--steps", "0"], "argument --steps: 0 must be at least 1"),
        (["bench-overhead", "--repeats", "0"], "argument --repeats: 0 must be at least 1"),
        (["bench-overhead", "--threads", "0"], "argument --threads: 0 must be at least 1"),
        (["bench-overhead", "--nope"], "clbench bench-overhead: error: unrecognized arguments"),
        (["bench-memory", "--strategies", "nope"], "unknown strategy 'nope'"),
        (["bench-memory", "--benchmark", "nope"], "unknown benchmark 'nope'"),
        (["bench-memory", "--nope"], "clbench bench-memory: error: unrecognized arguments"),
        (["bench-svd", "--seed", str(10**20)], f"seed {10**20} is not a valid seed"),
        (["bench-svd", "--repeats", "x"], "argument --repeats: 'x' is not an integer"),
        (["bench-svd", "--threads", "0"], "argument --threads: 0 must be at least 1"),
    ],
)
def test_bench_commands_report_bad_arguments_in_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, argv)


def test_top_level_help_keeps_whole_sentences(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "bench (sweep + report), new-strategy, bench-svd, bench-overhead, bench-memory." in out
