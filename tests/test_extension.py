"""Extending clbench from outside, the way a user does it: a generated strategy package installed
into this environment, and a benchmark module built on in-memory arrays."""

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fakes import installed_apart
from PIL import Image

from clbench.api import StrategyBuild, register_benchmark, task_from_arrays, task_from_datasets
from clbench.cli import main
from clbench.errors import ConfigError
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.scaffold import new_strategy
from clbench.strategies.api import strategy_from_factory

BIN = Path(sys.executable).parent


def clbench(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "clbench"), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_a_generated_strategy_installs_runs_sweeps_and_reports(tmp_path):
    package = new_strategy("skeleton-probe", tmp_path)
    env = installed_apart(package, tmp_path / "site")
    listing = clbench("list", cwd=tmp_path, env=env).stdout
    assert "skeleton-probe" in listing and "strength: float = 1.0" in listing
    one = clbench(
        "run", "--benchmark", "split-digits", "--strategy", "skeleton-probe",
        "--set", "protocol.epochs=2", "--set", "skeleton-probe.strength=5",
        "--results", "single", "--quiet", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert "split-digits__skeleton-probe__seed0__" in one.stdout
    (tmp_path / "suite.toml").write_text(
        'benchmarks = ["split-digits"]\nstrategies = ["naive", "skeleton-probe"]\n'
        "seeds = [0, 1]\noverrides = { protocol = { epochs = 1 } }\n"
    )
    clbench("sweep", "suite.toml", "--results", "runs", "--jobs", "2", cwd=tmp_path, env=env)
    clbench("report", "runs", "--out", "report", cwd=tmp_path, env=env)
    table = pd.read_csv(tmp_path / "report" / "tables" / "split-digits.csv")
    assert set(table["strategy"]) == {"naive", "skeleton-probe"}
    assert table.set_index("strategy").loc["skeleton-probe", "seeds"] == 2
    assert table.set_index("strategy").loc["skeleton-probe", "kept_bytes_mean"] > 0
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=package, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert own_tests.returncode == 0, own_tests.stdout[-2000:]
    listing = subprocess.run([str(BIN / "clbench"), "list"], capture_output=True, text=True)
    assert "skeleton-probe" not in listing.stdout  # installed apart: this environment never saw it


BLOBS_MODULE = '''
"""An outside benchmark: three two-class tasks of Gaussian blobs held in numpy arrays."""
import numpy as np

from clbench.api import DataOptions, TaskSequence, task_from_arrays, task_sequence


def blobs(options: DataOptions) -> TaskSequence:
    """Three tasks of two Gaussian blobs in 8 dimensions."""
    rng = np.random.default_rng(0)
    tasks = []
    for k in range(3):
        centres = rng.normal(size=(2, 8)) * 3
        def draw(n):
            y = rng.integers(0, 2, size=n)
            return (centres[y] + rng.normal(size=(n, 8))).astype(np.float32), y
        x_train, y_train = draw(200)
        x_test, y_test = draw(100)
        tasks.append(task_from_arrays(f"blobs-{k}", x_train, y_train, x_test, y_test))
    return task_sequence(tasks)
'''


def test_an_outside_benchmark_on_in_memory_arrays_runs_a_zoo_strategy(
    tmp_path, monkeypatch, registered
):
    (tmp_path / "my_blobs.py").write_text(textwrap.dedent(BLOBS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_blobs

    register_benchmark("blobs", my_blobs.blobs)
    overrides = {"protocol": {"epochs": 3, "batch_size": 16, "lr": 0.05}}
    result = run(RunSpec("blobs", "ewc", overrides=overrides), tmp_path / "runs")
    matrix = np.asarray(result["accuracy_matrix"])
    assert matrix.shape == (3, 3)
    assert np.diag(matrix).min() > 90  # separable blobs: each task is learned
    assert result["spec"]["benchmark"] == "blobs"
    assert (tmp_path / "runs" / f"{result['name']}.json").exists()


class ImageFolderLike:
    """A torchvision-style dataset: (PIL image, label) pairs."""

    def __init__(self, n):
        self.items = [(Image.new("L", (6, 6), color=10 * i), i % 2) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_torchvision_style_datasets_become_uint8_tasks():
    task = task_from_datasets(
        "pil", ImageFolderLike(6), ImageFolderLike(4), mean=(0.5,), std=(0.2,)
    )
    assert task.x_train.dtype == torch.uint8 and task.x_train.shape == (6, 1, 6, 6)
    assert task.x_train[3].unique().tolist() == [30] and task.y_train.tolist() == [0, 1] * 3


def test_bad_data_is_a_readable_error():
    x, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match=r"t: y_train must be 4 integer labels, got torch.float"):
        task_from_arrays("t", x, y.astype(np.float32), x, y)
    with pytest.raises(ConfigError, match=r"x_train samples are \(3,\), x_test's \(5,\)"):
        task_from_arrays("t", x, y, np.zeros((4, 5), np.float32), y)
    with pytest.raises(ConfigError, match="holds the label -1"):
        task_from_arrays("t", x, y - 1, x, y)
    with pytest.raises(ConfigError, match="x_train is a list; give a torch tensor or numpy"):
        task_from_arrays("t", [[0.0]], y, x, y)


@dataclass
class DictParams:
    weights: dict[str, float]


def dict_factory(model: torch.nn.Module, params: DictParams) -> StrategyBuild:
    return StrategyBuild()


def test_a_parameter_type_the_cli_cannot_parse_is_refused_at_registration():
    with pytest.raises(
        ConfigError, match="field 'weights' has type dict, which --set cannot parse; use bool"
    ):
        strategy_from_factory("dicts", dict_factory)


def test_new_strategy_errors_are_one_line(tmp_path, capsys):
    assert main(["new-strategy", "ewc", "--dir", str(tmp_path)]) == 2
    assert main(["new-strategy", "Bad_Name", "--dir", str(tmp_path)]) == 2
    assert main(["new-strategy", "fresh-one", "--dir", str(tmp_path)]) == 0
    assert main(["new-strategy", "fresh-one", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("clbench: error: ") for line in err)
    assert "already registered" in err[0] and "not valid" in err[1] and "already exists" in err[2]
