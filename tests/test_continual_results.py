"""A result's continual-evaluation record: checked when read, its metrics recomputed from the curve,
and shown by reports (tables, CSV, LaTeX, the stability-gap figure)."""

import json

import pandas as pd
import pytest

from clbench.report import write_report
from clbench.store import InvalidDocument, load_result
from results import HAND_ROWS, write_result

MATRIX = [[80.0, 10.0, 10.0], [79.5, 90.0, 10.0], [75.0, 84.0, 95.0]]


def record(rows=HAND_ROWS, task_ends=(4, 8, 12)) -> dict:
    iteration, task, accuracy = (list(column) for column in zip(*rows, strict=True))
    return {
        "eval_every": 2,
        "split": "test",
        "subset_sizes": [500, 500, 500],
        "seconds": 1.5,
        "task_ends": list(task_ends),
        "iteration": iteration,
        "task": task,
        "accuracy": accuracy,
    }


def test_metrics_and_gaps_are_recomputed_from_the_curve_not_read_from_the_file(tmp_path):
    path = write_result(tmp_path, "toy", "gpm", 0, MATRIX, continual=record())
    document = json.loads(path.read_text())
    document["metrics"]["min_acc"] = 99.0
    document["continual"]["stability_gap"] = [{"task": 1, "drop": 0.0}]
    path.write_text(json.dumps(document))
    loaded = load_result(path)
    assert loaded["metrics"]["min_acc"] == pytest.approx(67)
    assert loaded["metrics"]["wc_acc"] == pytest.approx(95 / 3 + 2 / 3 * 67)
    assert loaded["continual"]["stability_gap"] == [
        {"task": 1, "drop": 30.0, "at": 2, "recovered_after": 4},
        {"task": 2, "drop": 6.0, "at": 4, "recovered_after": None},
    ]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"task_ends": [4, 8]}, "task_ends must be 3 increasing iteration counts"),
        ({"task_ends": [4, 4, 12]}, "task_ends must be 3 increasing iteration counts"),
        ({"accuracy": [60.0] * 11 + [120.0]}, "an accuracy is not a percentage in [0, 100]"),
        ({"task": [1] * 11 + [4]}, "a task number is not in 1..3"),
        ({"iteration": [4, 2] + [r[0] for r in HAND_ROWS[2:]]}, "rows are not in training order"),
        ({"accuracy": [60.0]}, "are not columns of one non-empty table"),
        ({"task_ends": [4, 8, 11]}, "the end of task 3 (iteration 11) lacks a task's accuracy"),
        ({"iteration": "many"}, 'continual.iteration is "many", expected a list'),
    ],
)
def test_a_crafted_record_makes_the_file_invalid_in_one_line(tmp_path, change, why):
    path = write_result(tmp_path, "toy", "gpm", 0, MATRIX, continual={**record(), **change})
    with pytest.raises(InvalidDocument) as caught:
        load_result(path)
    assert why in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_reports_show_the_continual_metrics_and_draw_the_curve_where_runs_have_them(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_result(runs, "toy", "gpm", seed, MATRIX, continual=record())
        write_result(runs, "plain", "gpm", seed, MATRIX)
    summary = write_report(runs, tmp_path / "report")
    assert summary.problems == []
    toy = pd.read_csv(tmp_path / "report" / "tables" / "toy.csv").set_index("strategy")
    assert toy.loc["gpm", "min_acc_mean"] == pytest.approx(67)
    assert toy.loc["gpm", "windowed_forgetting_mean"] == pytest.approx(18)
    assert toy.loc["gpm", "stability_gap_mean"] == pytest.approx(18)
    markdown = (tmp_path / "report" / "tables" / "toy.md").read_text()
    assert "min-ACC (%)" in markdown and "Stability gap (pts)" in markdown
    tables = tmp_path / "report" / "tables"
    continual = (tables / "toy-continual.tex").read_text()
    assert all(title in continual for title in ("ACC", "BWT", "minACC", "WCACC", "WF10", "Gap"))
    assert "WCACC" not in (tables / "toy-wide.tex").read_text()  # it has a float of its own
    plain = (tables / "plain.md").read_text()
    assert "min-ACC" not in plain and "Stability gap" not in plain
    assert not (tables / "plain-continual.tex").exists()
    figures = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    assert "toy-stability-gap.png" in figures and "plain-stability-gap.png" not in figures
