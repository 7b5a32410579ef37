"""The report never pools unlike runs, and every claim it prints is backed by the runs: rows by
configuration, conflicts refused or listed, bold only where a test supports it, captions and
provenance from the data, spreads and tests as computed by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from clbench.cli import main
from clbench.errors import ClbenchError
from clbench.report import stats, write_report
from clbench.report.build import ReportOptions
from clbench.report.conflicts import ConflictingRuns
from clbench.report.layout import Selection, load_labels
from results import NO_FIGURES, write_result


def _matrix(final: float) -> list[list[float]]:
    """A two-task matrix whose ACC is `final` and whose BWT is 0."""
    return [[final, 0.0], [final, final]]


def _rows(summary, benchmark: str = "toy") -> dict[str, list[str]]:
    lines = [ln for ln in summary.tables[benchmark].markdown.splitlines() if ln.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]
    return {row[0]: row[1:] for row in cells}


def test_runs_of_one_name_with_different_parameters_are_two_rows_not_a_mean(tmp_path):
    """The defect: two seed-0 runs of one strategy, with different parameters and code, were
    averaged into one row that showed one seed and a std."""
    folder = tmp_path / "runs"
    write_result(folder, "toy", "my-method", 0, _matrix(60), strategy_params={"lam": 1.0})
    write_result(folder, "toy", "my-method", 0, _matrix(70), strategy_params={"lam": 2.0})
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    rows = _rows(summary)
    assert set(rows) == {"my-method (lam=1.0)", "my-method (lam=2.0)"}
    for label, cells in rows.items():
        assert "±" not in cells[0], f"{label}: one seed has no spread"
        assert cells[-1] == "1"


def test_duplicate_seeds_and_mixed_code_are_refused_with_a_line_each_naming_the_files(
    tmp_path, capsys
):
    folder = tmp_path / "runs"
    params = {"lam": 1.0}
    b = folder / "copy-made-by-new-code.json"
    write_result(
        folder,
        "toy",
        "gpm",
        0,
        _matrix(62),
        strategy_params=params,
        provenance={"code_digest": "new"},
    ).rename(b)  # the file name a rerun would have: moved aside before that run is written
    a = write_result(folder, "toy", "gpm", 0, _matrix(60), strategy_params=params)
    c = write_result(folder, "toy", "gpm", 1, _matrix(61), strategy_params=params)
    with pytest.raises(ConflictingRuns) as caught:
        write_report(folder, tmp_path / "report", NO_FIGURES)
    lines = caught.value.lines
    assert len(lines) == 2
    assert (
        lines[0].startswith("seed 0 of toy / gpm twice")
        and a.name in lines[0]
        and b.name in lines[0]
    )
    assert lines[1].startswith("toy / gpm mixes code")
    assert f"code0digest ({a.name}, {c.name})" in lines[1] and f"new ({b.name})" in lines[1]
    assert not (tmp_path / "report").exists()  # refused before writing anything

    assert main(["report", str(folder), "--out", str(tmp_path / "cli"), "--figures", ""]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.removeprefix("clbench: conflict: ") for line in err[:2]] == lines
    assert err[2].startswith("clbench: error: 2 conflicts") and "--allow-mixed" in err[2]

    pooled = write_report(folder, tmp_path / "pooled", ReportOptions(figures=(), allow_mixed=True))
    assert pooled.conflicts == lines
    index = pooled.index.read_text()
    assert "## Pooled on purpose (--allow-mixed)" in index and b.name in index
    table = pd.read_csv(tmp_path / "pooled" / "tables" / "toy.csv")
    assert table.loc[0, "runs"] == 3 and table.loc[0, "seeds"] == 2


def test_a_backup_copy_counts_once_but_a_rerun_by_other_code_is_not_a_copy(tmp_path):
    folder = tmp_path / "runs"
    original = write_result(folder, "toy", "gpm", 0, _matrix(60))
    (folder / "backup.json").write_text(original.read_text())
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    assert summary.problems == [
        f"left out: backup.json: the same run as {original.name}, counted once"
    ]


@pytest.mark.parametrize(
    ("changed", "noun"),
    [({"cpu": "Other CPU"}, "machines"), ({"threads": 4}, "thread counts")],
)
def test_one_row_measured_on_different_machines_or_threads_is_a_conflict(tmp_path, changed, noun):
    folder = tmp_path / "runs"
    write_result(folder, "toy", "gpm", 0, _matrix(60))
    other = write_result(folder, "toy", "gpm", 1, _matrix(61), environment=changed)
    with pytest.raises(ConflictingRuns) as caught:
        write_report(folder, tmp_path / "report", NO_FIGURES)
    (line,) = caught.value.lines
    assert line.startswith(f"toy / gpm mixes {noun}") and other.name in line


def test_rows_of_one_benchmark_measured_by_different_harness_code_conflict(tmp_path):
    folder = tmp_path / "runs"
    write_result(folder, "toy", "gpm", 0, _matrix(60))
    late = write_result(
        folder, "toy", "sgp", 0, _matrix(61), provenance={"harness_digest": "newer"}
    )
    with pytest.raises(ConflictingRuns) as caught:
        write_report(folder, tmp_path / "report", NO_FIGURES)
    (line,) = caught.value.lines
    assert line.startswith("toy: rows measured by different harness code") and late.name in line


def _three_seeds(folder, strategy, finals, **kwargs):
    for seed, final in enumerate(finals):
        write_result(folder, "toy", strategy, seed, _matrix(final), **kwargs)


def test_bold_needs_three_seeds_and_a_significant_difference(tmp_path):
    two = tmp_path / "two"
    for strategy, finals in (("gpm", [80, 81]), ("sgp", [60, 61])):
        _three_seeds(two, strategy, finals)
    summary = write_report(two, tmp_path / "r2", NO_FIGURES)
    assert "**" not in summary.tables["toy"].markdown  # 20 points apart, but 2 seeds a row
    assert "No value is bold: bold needs at least 3 seeds per row" in summary.tables["toy"].markdown

    clear = tmp_path / "clear"
    _three_seeds(clear, "gpm", [80, 81, 82])
    _three_seeds(clear, "sgp", [60, 61.5, 62])
    rows = _rows(write_report(clear, tmp_path / "r3", NO_FIGURES))
    assert rows["gpm"][0] == "**81.00 ± 1.00**"

    noisy = tmp_path / "noisy"
    _three_seeds(noisy, "gpm", [80, 70, 90])  # mean 80
    _three_seeds(noisy, "sgp", [82, 65, 88])  # mean 78.3: ahead by 1.7 points, not by a test
    assert scipy_stats.ttest_rel([80, 70, 90], [82, 65, 88]).pvalue > 0.05
    summary = write_report(noisy, tmp_path / "r4", NO_FIGURES)
    assert not _rows(summary)["gpm"][0].startswith("**")


def test_bounds_and_the_oracle_are_never_bold(tmp_path):
    folder = tmp_path / "runs"
    _three_seeds(
        folder, "joint", [99, 99.5, 99.2], strategy_info={"display_name": "Joint", "role": "oracle"}
    )
    _three_seeds(
        folder,
        "frozen",
        [95, 95.5, 95.2],
        strategy_info={"display_name": "Frozen", "role": "bound"},
    )
    _three_seeds(folder, "gpm", [80, 81, 82])
    _three_seeds(folder, "sgp", [60, 61.5, 62])
    rows = _rows(write_report(folder, tmp_path / "report", NO_FIGURES))
    assert not rows["Joint"][0].startswith("**") and not rows["Frozen"][0].startswith("**")
    assert rows["gpm"][0].startswith("**")


def test_times_under_different_job_counts_are_not_compared(tmp_path):
    folder = tmp_path / "runs"
    _three_seeds(folder, "gpm", [80, 81, 82], seconds=10)
    _three_seeds(folder, "sgp", [60, 61.5, 62], seconds=100, environment={"jobs": 2})
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    time_cells = [cells[-2] for cells in _rows(summary).values()]
    assert not any(cell.startswith("**") for cell in time_cells)
    assert "Time: training and evaluation of the whole run in s, not compared" in (
        summary.tables["toy"].markdown
    )
    same = tmp_path / "same"
    _three_seeds(same, "gpm", [80, 81, 82], seconds=10)
    _three_seeds(same, "sgp", [60, 61.5, 62], seconds=100)
    summary = write_report(same, tmp_path / "same-report", NO_FIGURES)
    assert _rows(summary)["gpm"][-2].startswith("**")
    assert "on Test CPU AVX2 with 1 thread(s) per run, 1 run(s) at a time" in (
        summary.tables["toy"].markdown
    )


@pytest.mark.parametrize(
    ("seeds", "phrase"),
    [
        (1, "Over one seed: single runs, no spread."),
        (3, "Over 3 seeds: mean and one standard deviation over seeds."),
    ],
)
def test_captions_state_the_seeds_and_spread_the_runs_have(tmp_path, seeds, phrase):
    folder = tmp_path / "runs"
    _three_seeds(folder, "gpm", [80, 81, 82][:seeds])
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    assert phrase in summary.tables["toy"].markdown
    latex = summary.tables["toy"].latex_wide
    assert "1 seeds" not in latex and phrase.split(":")[0] in latex
    promised = "The spreads are in the full-width table." in summary.tables["toy"].latex
    assert promised == (seeds > 1)


def test_confidence_intervals_match_a_hand_computation(tmp_path):
    values = [80.0, 81.0, 84.0]  # mean 81.67, std 2.082
    half = 4.302652729911275 * np.std(values, ddof=1) / math.sqrt(3)  # t(0.975, 2 df)
    low, high = stats.interval(values, "ci")
    assert (low, high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    boot_low, boot_high = stats.interval(values, "bootstrap")
    assert 80.0 <= boot_low < np.mean(values) < boot_high <= 84.0
    assert all(math.isnan(bound) for bound in stats.interval([5.0], "ci"))  # one seed: none
    folder = tmp_path / "runs"
    _three_seeds(folder, "gpm", values)
    summary = write_report(folder, tmp_path / "report", ReportOptions(figures=(), spread="ci"))
    assert _rows(summary)["gpm"][0] == f"81.67 ± {half:.2f}"
    assert "95 % confidence interval of the mean (Student's t over seeds)" in (
        summary.tables["toy"].markdown
    )
    boot = write_report(folder, tmp_path / "boot", ReportOptions(figures=(), spread="bootstrap"))
    assert _rows(boot)["gpm"][0] == f"81.67 [{boot_low:.2f}, {boot_high:.2f}]"


def test_tests_and_holm_match_a_hand_computation():
    a, b = [(0, 80.0), (1, 82.0), (2, 85.0)], [(0, 78.0), (1, 81.0), (2, 82.0)]
    d = np.array([2.0, 1.0, 3.0])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    paired = stats.compare(a, b, paired=True)
    assert paired.test == "paired t"
    assert paired.p == pytest.approx(2 * scipy_stats.t.sf(t, 2))
    welch = stats.compare(a, b, paired=False)
    x, y = np.array([v for _, v in a]), np.array([v for _, v in b])
    se = math.sqrt(x.var(ddof=1) / 3 + y.var(ddof=1) / 3)
    df = se**4 / ((x.var(ddof=1) / 3) ** 2 / 2 + (y.var(ddof=1) / 3) ** 2 / 2)
    assert welch.test == "Welch t"
    assert welch.p == pytest.approx(2 * scipy_stats.t.sf((x.mean() - y.mean()) / se, df))
    # Holm: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone), back in the given order
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_pairwise_table_lists_every_pair_with_its_test(tmp_path):
    folder = tmp_path / "runs"
    _three_seeds(folder, "gpm", [80, 81, 82])
    _three_seeds(folder, "sgp", [60, 61.5, 62])
    _three_seeds(folder, "naive", [70, 71, 75])
    write_report(folder, tmp_path / "report", NO_FIGURES)
    table = pd.read_csv(tmp_path / "report" / "tables" / "toy-pairwise.csv")
    assert len(table) == 2 * 3  # ACC and BWT, 3 pairs each
    acc = table[table["quantity"] == "acc"].set_index(["a", "b"])
    expected = scipy_stats.ttest_rel([80, 81, 82], [60, 61.5, 62]).pvalue
    pair = acc.loc[("gpm", "sgp")] if ("gpm", "sgp") in acc.index else acc.loc[("sgp", "gpm")]
    assert pair["p"] == pytest.approx(expected) and pair["test"] == "paired t"
    assert set(acc["p_holm"]) == set(stats.holm(list(acc["p"])))


def test_labels_order_and_subsets_are_the_authors(tmp_path):
    folder = tmp_path / "runs"
    for strategy in ("naive", "gpm", "ness"):
        write_result(folder, "toy", strategy, 0, _matrix(60))
        write_result(folder, "other", strategy, 0, _matrix(60))
    labels = tmp_path / "labels.toml"
    labels.write_text('ness = "NESS (ours)"\nunused = "X"\n')
    options = ReportOptions(
        figures=(),
        selection=Selection(
            strategies=["ness", "naive"], benchmarks=["toy"], labels=load_labels(labels)
        ),
    )
    summary = write_report(folder, tmp_path / "report", options)
    assert list(summary.tables) == ["toy"]
    assert list(_rows(summary)) == ["NESS (ours)", "naive"]
    assert "labels file: 'unused' names no row of the report" in summary.problems
    with pytest.raises(
        ClbenchError, match=r"^--strategies ewc: not in the results; they hold gpm, naive, ness$"
    ):
        write_report(
            folder,
            tmp_path / "x",
            ReportOptions(figures=(), selection=Selection(strategies=["ewc"])),
        )
    labels.write_text("ness = 3\n")
    with pytest.raises(ClbenchError, match="each run label maps to a non-empty string"):
        load_labels(labels)
    with pytest.raises(ClbenchError, match="unknown figure pie; valid figures: acc-bwt"):
        ReportOptions(figures=("pie",))


def test_grid_values_sort_as_numbers(tmp_path):
    folder = tmp_path / "runs"
    for value in (0.1, 1e-06, 1.0, 0.001):
        write_result(folder, "toy", "ness", 0, _matrix(60), strategy_params={"eps": value})
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    assert list(_rows(summary)) == [f"ness (eps={v})" for v in (1e-06, 0.001, 0.1, 1.0)]


def test_index_states_the_provenance_and_the_real_results_folder(tmp_path):
    folder = tmp_path / "results" / "runs"
    _three_seeds(folder, "gpm", [80, 81, 82])
    (folder / "broken.json").write_text("{")
    summary = write_report(folder, tmp_path / "results", NO_FIGURES)
    index = summary.index.read_text()
    assert "3 runs from the result files in [`runs`](runs)" in index
    assert "1 file(s) left out (1 invalid" in index
    assert "`0123456789ab` (every run)" in index and "`harness0dige` (every run)" in index
    assert "python 3.11.7, torch 2.14.1 (every run)" in index
    assert (
        "Machine: Test CPU AVX2 (every run); threads per run: 1 (every run); runs at a time: 1"
        in index
    )


def test_average_incremental_accuracy_is_a_column_and_forward_transfer_only_where_defined(tmp_path):
    folder = tmp_path / "runs"
    write_result(folder, "toy", "gpm", 0, [[90.0, 10.0], [70.0, 80.0]])
    table = pd.read_csv(
        write_report(folder, tmp_path / "report", NO_FIGURES).index.parent / "tables" / "toy.csv"
    )
    # AIA = mean(90, mean(70, 80)) = 82.5
    assert table.loc[0, "average_incremental_accuracy_mean"] == pytest.approx(82.5)
    assert "FWT" not in (tmp_path / "report" / "tables" / "toy.md").read_text()


def test_forward_transfer_is_a_column_where_the_runs_define_it(tmp_path):
    folder = tmp_path / "runs"
    matrix = [[90.0, 30.0, 20.0], [70.0, 80.0, 40.0], [60.0, 70.0, 85.0]]
    write_result(folder, "shared", "gpm", 0, matrix, initial=[10.0, 12.0, 8.0])
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    # FWT = ((30 - 12) + (40 - 8)) / 2 = 25
    table = pd.read_csv(tmp_path / "report" / "tables" / "shared.csv")
    assert table.loc[0, "forward_transfer_mean"] == pytest.approx(25.0)
    assert "FWT (pts)" in summary.tables["shared"].markdown
    assert "FWT" in summary.tables["shared"].latex_wide


def test_the_report_command_passes_every_option_through(tmp_path, capsys):
    folder = tmp_path / "runs"
    for strategy in ("naive", "gpm", "ness"):
        _three_seeds(folder, strategy, [60, 61, 63])
    labels = tmp_path / "labels.toml"
    labels.write_text('ness = "NESS (ours)"\n')
    out = tmp_path / "report"
    arguments = ["report", str(folder), "--out", str(out), "--labels", str(labels)]
    arguments += ["--strategies", "ness,naive", "--benchmarks", "toy", "--figures", "acc-bwt"]
    assert main([*arguments, "--spread", "ci", "--alpha", "0.01"]) == 0
    table = (out / "tables" / "toy.md").read_text()
    assert [row.split("|")[1].strip() for row in table.splitlines()[2:4]] == [
        "NESS (ours)",
        "naive",
    ]
    assert "95 % confidence interval" in table and "significance level 0.01" in table
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "toy-acc-bwt.pdf",
        "toy-acc-bwt.png",
    ]
    assert main([*arguments, "--alpha", "2"]) == 2
    assert (
        capsys.readouterr().err.strip().endswith("significance level 2.0 must lie between 0 and 1")
    )


def test_pooled_runs_that_repeat_a_seed_are_compared_on_every_value():
    """With --allow-mixed a row may hold seed 0 twice: Welch's test sees both values."""
    a = [(0, 80.0), (0, 84.0), (1, 82.0)]
    b = [(0, 70.0), (1, 71.0), (2, 72.0)]
    result = stats.compare(a, b, paired=False)
    assert (result.n_a, result.difference) == (3, pytest.approx(82.0 - 71.0))
    assert result.p == pytest.approx(
        scipy_stats.ttest_ind([80, 84, 82], [70, 71, 72], equal_var=False).pvalue
    )
