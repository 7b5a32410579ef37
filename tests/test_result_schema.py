"""Result files that are JSON but not results: sweeps redo them, reports leave them out, both in
one line; metrics come from the accuracy matrix; a copy of a result counts once; sweeps delete
only their own temporary files."""

import json
import shutil

import pandas as pd
import pytest

from clbench.cli import main
from clbench.store import TMP_PREFIX, read_result
from results import write_result


def _drop_train_seconds(document):
    del document["tasks"][0]["train_seconds"]


# (how the document is damaged, the reason the one-line message gives)
MALFORMED = {
    "matrix of numbers": (lambda d: d.update(accuracy_matrix=[5]), "accuracy_matrix[0] is 5"),
    "tasks a number": (lambda d: d.update(tasks=5), "tasks is 5, expected a list"),
    "provenance a string": (lambda d: d.update(provenance="x"), 'provenance is "x"'),
    "metrics empty": (lambda d: d.update(metrics={}), "metrics: missing acc, bwt"),
    "spec a string": (lambda d: d.update(spec="x"), 'spec is "x", expected an object'),
    "task without train_seconds": (_drop_train_seconds, "tasks[0]: missing train_seconds"),
}


def _damage(path, how):
    document = json.loads(path.read_text())
    MALFORMED[how][0](document)
    path.write_text(json.dumps(document))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A one-run suite on split-digits and the folder its sweep filled."""
    folder = tmp_path_factory.mktemp("swept")
    suite = folder / "tiny.toml"
    suite.write_text(
        'benchmarks = ["split-digits"]\nstrategies = ["naive"]\nseeds = [0]\n'
        "overrides = { protocol = { epochs = 1 } }\n"
    )
    assert main(["sweep", str(suite), "--results", str(folder / "runs")]) == 0
    return suite, folder / "runs"


def _sweep(suite, results, *extra):
    return main(["sweep", str(suite), "--results", str(results), *extra])


@pytest.mark.parametrize("how", MALFORMED)
def test_a_sweep_warns_in_one_line_and_redoes_a_malformed_result(swept, tmp_path, capsys, how):
    suite, original = swept
    results = tmp_path / "runs"
    shutil.copytree(original, results)
    (path,) = results.glob("*.json")
    _damage(path, how)
    capsys.readouterr()
    assert _sweep(suite, results, "--dry-run") == 0
    out, err = capsys.readouterr()
    assert f"{path.stem}  [to run]" in out and "1 to run" in out
    (warning,) = err.splitlines()
    assert warning.startswith(f"clbench: warning: invalid result {path}: ")
    assert MALFORMED[how][1] in warning and "Traceback" not in err
    assert _sweep(suite, results) == 0
    out, err = capsys.readouterr()
    assert "1 runs done" in out and len(err.splitlines()) == 1
    assert read_result(path) is not None


@pytest.fixture
def toy(tmp_path):
    """Two strategies, two seeds each, on a three-task benchmark."""
    folder = tmp_path / "runs"
    write_result(folder, "toy", "naive", 0, [[90, 0, 0], [60, 80, 0], [50, 60, 100]])
    write_result(folder, "toy", "naive", 1, [[80, 0, 0], [70, 90, 0], [30, 70, 90]])
    write_result(folder, "toy", "gpm", 0, [[90, 0, 0], [90, 80, 0], [80, 80, 70]])
    write_result(folder, "toy", "gpm", 1, [[100, 0, 0], [100, 90, 0], [100, 90, 80]])
    return folder


def _report(folder, capsys):
    """Exit status, the output lines that name files left out, and the table as CSV."""
    out = folder.parent / "report"
    status = main(["report", str(folder), "--out", str(out)])
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    left_out = [
        line.strip() for line in printed.out.splitlines() if line.strip().startswith("left out: ")
    ]
    return status, left_out, pd.read_csv(out / "tables" / "toy.csv").set_index("strategy")


@pytest.mark.slow
def test_a_report_skips_each_malformed_file_in_one_line(toy, capsys):
    damaged = {}
    for seed, how in enumerate(MALFORMED, start=2):
        path = write_result(toy, "toy", "gpm", seed, [[90, 0, 0], [90, 80, 0], [80, 80, 70]])
        _damage(path, how)
        damaged[path.name] = MALFORMED[how][1]
    failure = toy / "toy__ewc__seed0__0123456789.failed.json"
    failure.write_text("[]")
    damaged[failure.name] = "the document is a list, expected an object"
    status, left_out, table = _report(toy, capsys)
    assert status == 0 and len(left_out) == len(damaged)
    for line in left_out:
        name, why = line.removeprefix("left out: ").split(": ", 1)
        assert damaged.pop(name) in why
    assert table.loc["gpm", "seeds"] == 2 and table.loc["naive", "seeds"] == 2


@pytest.mark.slow
def test_metrics_edited_in_a_result_file_are_recomputed_from_its_matrix(toy, capsys):
    path = next(toy.glob("toy__naive__seed0__*.json"))
    document = json.loads(path.read_text())
    document["metrics"]["acc"] = 99.99
    path.write_text(json.dumps(document))
    status, _, table = _report(toy, capsys)
    # naive: ACC (50+60+100)/3 = 70 and (30+70+90)/3; gpm: 230/3 and 270/3
    assert status == 0 and table.loc["naive", "acc_mean"] == pytest.approx((70 + 190 / 3) / 2)
    markdown = (toy.parent / "report" / "tables" / "toy.md").read_text().splitlines()
    rows = [row for row in markdown[2:] if row.startswith("|")]
    acc = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in rows}
    assert acc["naive"].startswith(f"{(70 + 190 / 3) / 2:.2f} ± ")  # not 99.99


@pytest.mark.slow
def test_a_backup_copy_of_a_result_counts_once_and_is_named(toy, capsys):
    path = next(toy.glob("toy__naive__seed0__*.json"))
    copy = path.with_name(f"{path.stem} (copy).json")  # sorts before the original
    shutil.copy(path, copy)
    status, left_out, table = _report(toy, capsys)
    assert status == 0
    assert left_out == [f"left out: {copy.name}: the same run as {path.name}, counted once"]
    assert table.loc["naive", "acc_mean"] == pytest.approx((70 + 190 / 3) / 2)  # not 2:1
    runs = pd.read_csv(toy.parent / "report" / "runs.csv")
    assert len(runs) == 4


def test_a_sweep_deletes_its_own_leftovers_and_nothing_else(swept, tmp_path, capsys):
    suite, original = swept
    results = tmp_path / "runs"
    shutil.copytree(original, results)
    notes = results / ".notes.json.x.tmp"
    notes.write_text("mine")
    leftover = results / f"{TMP_PREFIX}{next(results.glob('*.json')).name}.k1ll3d"
    leftover.write_text('{"format": 2, "na')
    assert _sweep(suite, results, "--reuse-stale") == 0  # nothing to run
    assert notes.read_text() == "mine" and not leftover.exists()
    assert "1 already present" in capsys.readouterr().out
