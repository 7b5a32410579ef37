import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clbench.cli import main
from clbench.errors import ClbenchError
from clbench.report import write_report
from results import NO_FIGURES, write_result

# Two seeds of two strategies on a three-task benchmark; metrics computed by hand below.
NAIVE = {
    0: [[90, 0, 0], [60, 80, 0], [50, 60, 100]],
    1: [[80, 0, 0], [70, 90, 0], [30, 70, 90]],
}
GPM = {
    0: [[90, 0, 0], [90, 80, 0], [80, 80, 70]],
    1: [[100, 0, 0], [100, 90, 0], [100, 90, 80]],
}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "runs"
    for seed in (0, 1):
        write_result(folder, "toy", "naive", seed, NAIVE[seed], seconds=10 + seed, kept=0)
        write_result(folder, "toy", "gpm", seed, GPM[seed], seconds=20, kept=4000 + 2000 * seed)
    return folder


@pytest.mark.slow
def test_table_values_match_hand_computed_metrics(results, tmp_path):
    summary = write_report(results, tmp_path / "report", NO_FIGURES)
    table = pd.read_csv(tmp_path / "report" / "tables" / "toy.csv").set_index("strategy")
    # naive seed 0: ACC (50+60+100)/3 = 70, BWT ((50-90)+(60-80))/2 = -30,
    # forgetting ((90-50)+(80-60))/2 = 30, learning (90+80+100)/3 = 90.
    # naive seed 1: ACC 190/3, BWT ((30-80)+(70-90))/2 = -35, forgetting (max(80,70)-30+20)/2 = 35,
    # learning (80+90+90)/3.
    assert table.loc["naive", "acc_mean"] == pytest.approx((70 + 190 / 3) / 2)
    assert table.loc["naive", "acc_std"] == pytest.approx(np.std([70, 190 / 3], ddof=1))
    assert table.loc["naive", "bwt_mean"] == pytest.approx(-32.5)
    assert table.loc["naive", "forgetting_mean"] == pytest.approx(32.5)
    assert table.loc["naive", "learning_accuracy_mean"] == pytest.approx((90 + 260 / 3) / 2)
    # gpm seed 0: BWT ((80-90)+(80-80))/2 = -5; seed 1: ((100-100)+(90-90))/2 = 0.
    assert table.loc["gpm", "bwt_mean"] == pytest.approx(-2.5)
    assert table.loc["gpm", "kept_bytes_mean"] == 5000
    assert table.loc["naive", "seconds_mean"] == pytest.approx(10.5)
    assert list(table["seeds"]) == [2, 2]
    assert summary.problems == []


@pytest.mark.slow
def test_markdown_and_latex_bold_a_tested_winner_per_column(tmp_path):
    """Three seeds a row, gpm ahead on ACC and forgetting, naive faster: bold goes to each
    column's winner, supported by a paired t-test over the seeds."""
    folder = tmp_path / "runs"
    for s in (0, 1, 2):
        # gpm: ACC 81 + s, forgetting 5 - s; naive: ACC 68.33 + s / 2, forgetting 34 - s / 2
        gpm = [[90, 0, 0], [90, 85, 0], [85 + s, 80 + s, 78 + s]]
        naive = [[90, 0, 0], [60, 88, 0], [50 + s, 60, 95 + s / 2]]
        write_result(folder, "toy", "gpm", s, gpm, seconds=20)
        write_result(folder, "toy", "naive", s, naive, seconds=10 + s / 10)
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    markdown = summary.tables["toy"].markdown
    gpm_row = next(line for line in markdown.splitlines() if line.startswith("| gpm"))
    naive_row = next(line for line in markdown.splitlines() if line.startswith("| naive"))
    gpm_cells = [c.strip() for c in gpm_row.strip("|").split("|")]
    naive_cells = [c.strip() for c in naive_row.strip("|").split("|")]
    assert gpm_cells[1] == "**82.00 ± 1.00**" and not naive_cells[1].startswith("**")  # ACC
    assert gpm_cells[3] == "**4.00 ± 1.00**"  # forgetting, lower is better
    assert naive_cells[-2].startswith("**") and not gpm_cells[-2].startswith("**")  # time
    assert "at significance level 0.05" in markdown
    # one column: ACC, BWT, time; full width: also forgetting, learning accuracy (naive) and AIA
    for name, bold in (("toy.tex", 3), ("toy-wide.tex", 6)):
        latex = (tmp_path / "report" / "tables" / name).read_text()
        assert r"\toprule" in latex and r"\bottomrule" in latex
        assert latex.count(r"\mathbf{") == bold, name
    assert r"\label{tab:clbench-toy-wide}" in latex


@pytest.mark.slow
def test_published_numbers_appear_only_where_the_benchmark_matches(tmp_path):
    folder = tmp_path / "runs"
    matrix = [[95, 0], [90, 96]]
    write_result(folder, "pmnist", "gpm", 0, matrix)
    write_result(folder, "pmnist", "naive", 0, matrix)
    write_result(folder, "toy", "gpm", 0, matrix)
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    pmnist = summary.tables["pmnist"].markdown
    gpm_row = next(line for line in pmnist.splitlines() if line.startswith("| gpm"))
    assert "93.91 [1]" in gpm_row  # GPM's published PMNIST ACC
    assert "[1] published: Saha, Garg & Roy" in pmnist
    assert "published" not in summary.tables["toy"].markdown


@pytest.mark.slow
def test_every_figure_is_written_and_not_blank(results, tmp_path):
    for value in (1e-4, 1e-3, 1e-2):
        for seed in (0, 1):
            write_result(results, "toy", "ness", seed, GPM[seed], strategy_params={"eps1": value})
    summary = write_report(results, tmp_path / "report")
    stems = {p.stem for p in summary.figures}
    assert stems == {
        "toy-acc-bwt",
        "toy-mean-accuracy",
        "toy-accuracy-matrices",
        "toy-cost",
        "toy-accuracy-vs-cost",
        "toy-ness-eps1-sensitivity",
        "toy-per-task-accuracy",
    }
    for path in summary.figures:
        assert path.stat().st_size > 5000
        if path.suffix == ".png":
            pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
            assert pixels.std() > 10, f"{path.name} looks blank"
    index = summary.index.read_text()
    for path in summary.figures:
        assert path.relative_to(tmp_path / "report").as_posix() in index
    for suffix in ("md", "tex", "csv"):
        assert f"tables/toy.{suffix}" in index
    assert "ness (eps1=0.0001)" in summary.tables["toy"].markdown


@pytest.mark.slow
def test_partial_results_are_reported_not_fatal(results, tmp_path):
    next(results.glob("toy__gpm__seed1__*.json")).unlink()
    (results / "toy__ewc__seed0__0123456789.failed.json").write_text(
        json.dumps({"name": "toy__ewc__seed0__0123456789", "error": "TrainingDiverged: NaN"})
    )
    (results / "toy__lwf__seed0__0123456789.json").write_text('{"format": 1, "na')  # truncated
    summary = write_report(results, tmp_path / "report", NO_FIGURES)
    assert summary.problems == [
        "missing: toy / gpm seed 1 (other rows of the benchmark have it)",
        "failed: toy / ewc seed 0: TrainingDiverged: NaN",
        "left out: toy__lwf__seed0__0123456789.json: not valid JSON (JSONDecodeError)",
    ]
    index = summary.index.read_text()
    assert "## Not in the tables" in index and "missing: toy / gpm seed 1" in index
    gpm = pd.read_csv(tmp_path / "report" / "tables" / "toy.csv").set_index("strategy").loc["gpm"]
    assert gpm["seeds"] == 1 and np.isnan(gpm["acc_std"])


def test_report_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClbenchError, match="no valid result files"):
        write_report(tmp_path / "empty", tmp_path / "out")


@pytest.mark.slow
def test_a_published_number_from_another_setup_is_marked_unless_the_row_ran_that_setup(tmp_path):
    """TRGP's published PMNIST ACC comes from the reference's ranking and gating: plain beside a
    row run that way, marked (with the setup in its footnote) beside clbench's default row."""
    folder = tmp_path / "runs"
    matrix = [[95, 0], [90, 96]]
    write_result(folder, "pmnist", "trgp", 0, matrix, strategy_params={"ranking": "inclusive"})
    reference = {"ranking": "reference", "gating": "first_layer"}
    write_result(folder, "pmnist", "trgp", 0, matrix, strategy_params=reference)
    write_result(folder, "cifar100-10", "adam-nscl", 0, matrix)
    summary = write_report(folder, tmp_path / "report", NO_FIGURES)
    rows = {
        line.split("|")[1].strip(): line
        for line in summary.tables["pmnist"].markdown.splitlines()
        if line.startswith("| trgp")
    }
    assert "96.34 [1]†" in rows["trgp (ranking=inclusive)"]
    assert "96.34 [1] " in rows["trgp (ranking=reference)"]
    assert "setup: the reference's ranking and gating" in summary.tables["pmnist"].markdown
    nscl = summary.tables["cifar100-10"].markdown
    assert "73.76 [1]†; 73.71 [2]†" in nscl  # no clbench run has the authors' model
    assert "73.76^{1\\dagger},\\,73.71^{2\\dagger}" in summary.tables["cifar100-10"].latex_wide
