"""The examples of docs/extending.md run as pasted: the notebook API, a strategy, a benchmark."""

import re
from pathlib import Path

import pandas as pd

from clbench.data import BENCHMARKS
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import STRATEGIES

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


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


def test_the_extension_examples_run_as_pasted():
    blocks = python_blocks("## Adding a strategy")
    assert len(blocks) == 2
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
        result = run(RunSpec("blobs", "shrink", overrides={"protocol": {"epochs": 2}}))
    finally:
        STRATEGIES.unregister("shrink")
        BENCHMARKS.unregister("blobs")
    assert len(result["accuracy_matrix"]) == 3 and result["metrics"]["acc"] > 60
