"""The examples of docs/extending.md run as pasted: the notebook API, a strategy, a benchmark."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from fakes import installed_apart

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BIN = Path(sys.executable).parent


def python_blocks(start: str, end: str | None = None) -> list[str]:
    text = DOC.read_text()
    section = text[text.index(start) : text.index(end) if end else len(text)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_notebook_example_runs_and_reads_percent(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (block,) = python_blocks("## From a notebook", "## Adding a strategy")
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    result, runs = namespace["result"], namespace["runs"]
    assert isinstance(runs, pd.DataFrame) and len(runs) == 1
    assert runs.loc[0, "acc"] == result["metrics"]["acc"] > 50  # percent, not a fraction
    assert runs.loc[0, "matrix"].max() > 50 and runs.loc[0, "strategy"] == "ewc"
    assert (tmp_path / "runs" / "notebook" / f"{result['name']}.json").is_file()
    assert "ACC " in capsys.readouterr().out


def named_files(start: str, end: str) -> dict[str, str]:
    """The files a section shows, each as "`path`:" followed by a code block: {path: text}."""
    text = DOC.read_text()
    section = text[text.index(start) : text.index(end)]
    return dict(re.findall(r"`([^`]+)`:\n\n```(?:toml|python)\n(.*?)```", section, re.S))


@pytest.mark.slow
def test_the_extension_examples_run_as_pasted(tmp_path):
    """The outside strategy of docs/extending.md, written as the files it shows and installed as a
    package, trains with its preset, reports its factor and counts what it keeps; the benchmark
    example registers in-process and runs it."""
    files = named_files("## Adding a strategy", "## Adding a benchmark")
    assert set(files) == {
        "pyproject.toml",
        "clbench_shrink/__init__.py",
        "clbench_shrink/presets.toml",
    }
    package = tmp_path / "clbench-shrink"
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    (benchmark,) = python_blocks("## Adding a benchmark")
    script = benchmark + textwrap.dedent(
        """
        import json, sys

        from clbench.resolution import RunSpec
        from clbench.runner import run

        from pathlib import Path

        from clbench.tuning.study import TuneOptions, tune

        quick = {"protocol": {"epochs": 2}}
        runs = {b: run(RunSpec(b, "shrink", overrides=quick)) for b in ("split-digits", "blobs")}
        options = TuneOptions("split-digits", ("shrink",), 2, Path("tuning"), typed=quick)
        runs["tuning"] = tune(options, say=lambda line: None)["split-digits/shrink"]
        json.dump(runs, sys.stdout)
        """
    )
    env = installed_apart(package, tmp_path / "site")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout)
    card = subprocess.run(
        [str(BIN / "clbench"), "protocol", "--benchmark", "split-digits", "--strategy", "shrink",
         "--json"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    digits, blobs = runs["split-digits"], runs["blobs"]
    assert digits["spec"]["strategy_params"] == {"factor": 0.99}  # the preset's value
    assert [task["shrink_factor"] for task in digits["tasks"]] == [0.99] * 5
    shared = digits["total_params"] - 100 * 2 * 5  # all but the five heads of 100 -> 2
    assert {task["kept_bytes"] for task in digits["tasks"]} == {4 * shared}
    factor = next(s for s in json.loads(card.stdout)["card"] if s["setting"] == "shrink.factor")
    assert factor["value"] == 0.99 and factor["source"].startswith("the example's choice")
    assert len(blobs["accuracy_matrix"]) == 3 and blobs["metrics"]["acc"] > 60
    assert set(runs["tuning"]["space"]) == {"protocol.lr", "shrink.factor"}  # its declared space
    trials = pd.read_csv(tmp_path / "tuning" / "trials.csv")
    assert trials["shrink.factor"].tolist()[0] == 0.99  # the first trial: its preset
    assert 0.9 <= trials["shrink.factor"].tolist()[1] <= 1.0
