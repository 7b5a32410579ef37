"""`clbench report` with hostile names in result files and bad folders: names become safe file
names inside the report folder and plain text in LaTeX, Markdown and figures; folder problems are
one-line errors, found before any work."""

import hashlib
import json
import os
import re

import pytest

from clbench.cli import main
from clbench.errors import ClbenchError
from clbench.report.text import write_inside
from clbench.store import write_json_atomic
from results import write_result

SAFE_NAME = re.compile(r"^[a-z0-9_-][a-z0-9._-]*$")
INJECTED = "\n\\input{/etc/passwd}"


def crafted(folder, benchmark, strategy, seed=0, params=None):
    """A valid result whose spec names `benchmark` and `strategy`, as a result file may say
    anything (its file name stays harmless)."""
    tag = hashlib.sha256(f"{benchmark}\0{strategy}".encode()).hexdigest()[:8]
    better = 5 * (strategy == "gpm")
    matrix = [[90, 0], [80 + better, 95 - seed]]
    path = write_result(folder, f"b{tag}", f"s{tag}", seed, matrix, strategy_params=params)
    document = json.loads(path.read_text())
    document["spec"].update(benchmark=benchmark, strategy=strategy)
    write_json_atomic(path, document)


def files_under(folder):
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["relative path", "absolute path", "hidden file", "longer than a file name"]
)
def test_a_benchmark_name_never_places_a_file_outside_the_report_folder(tmp_path, kind):
    paper = tmp_path / "paper" / "main.tex"
    paper.parent.mkdir()
    paper.write_text("my paper\n")
    deep = tmp_path / "a" / "b" / "c" / "d"
    runs, out = deep / "runs", deep / "out"
    benchmark = {
        "relative path": "../../../../escape-bench",
        "absolute path": str(tmp_path / "paper" / "main"),
        "hidden file": ".profile",
        "longer than a file name": "B" * 300,
    }[kind]
    for strategy in ("naive", "gpm"):
        crafted(runs, benchmark, strategy)
    before = files_under(tmp_path)
    assert main(["report", str(runs), "--out", str(out)]) == 0
    written = files_under(tmp_path) - before
    assert all(p.is_relative_to(out) for p in written)
    tops = {p.relative_to(out).parts[0] for p in written}
    assert tops == {"tables", "figures", "index.md", "runs.csv"}
    assert all(SAFE_NAME.match(p.name) and len(p.name) <= 100 for p in written)
    assert paper.read_text() == "my paper\n"
    assert len(list((out / "tables").glob("*.tex"))) == 2


@pytest.mark.slow
def test_names_that_slug_alike_keep_files_of_their_own(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    for benchmark in ("Digits/A", "digits?a"):
        for strategy in ("naive", "gpm"):
            crafted(runs, benchmark, strategy)
    for strategy in ("NESS", "ness"):  # two sensitivity figures of one benchmark
        for eps in (0.01, 0.1):
            crafted(runs, "Digits/A", strategy, params={"eps1": eps})
    assert main(["report", str(runs), "--out", str(out)]) == 0
    tables = {p.name for p in (out / "tables").iterdir()}
    assert len(tables) == 12 and all(SAFE_NAME.match(name) for name in tables)  # 6 a benchmark
    figures = {p.name for p in (out / "figures").iterdir()}
    assert len(figures) == 2 * (6 + 6 + 2) and all(SAFE_NAME.match(name) for name in figures)
    latex = [p.read_text() for p in (out / "tables").glob("*.tex")]
    assert sum(r"\caption{Digits/A." in tex for tex in latex) == 2  # one-column and wide
    assert sum(r"\caption{digits?a." in tex for tex in latex) == 2
    index = (out / "index.md").read_text()
    links = re.findall(r"\]\(((?:tables|figures)/[^)]+)\)", index)
    assert len(set(links)) == 12 + 28 and all((out / link).is_file() for link in links)


@pytest.mark.slow
def test_names_reach_latex_markdown_and_figures_as_plain_text(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    benchmark = "bench" + INJECTED
    evil = "evil|pipe" + INJECTED + " $x$ $x^$"  # an unparsable formula for matplotlib
    for strategy in (evil, "gpm"):
        for seed in (0, 1):
            crafted(runs, benchmark, strategy, seed)
    assert main(["report", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for tex in (out / "tables").glob("*.tex"):
        lines = tex.read_text().splitlines()
        assert lines[0].startswith("% clbench comparison table, bench ")
        assert lines[1].startswith(r"\begin{table")
        assert not any(line.lstrip().startswith(r"\input") for line in lines)
        assert r"\input{" not in tex.read_text()
    (markdown,) = [p for p in (out / "tables").glob("*.md") if "pairwise" not in p.name]
    rows = [line for line in markdown.read_text().splitlines() if line.startswith("|")]
    assert len(rows) == 4  # header, rule, two strategies
    assert {len(re.findall(r"(?<!\\)\|", row)) for row in rows} == {11}  # 10 columns
    for text in (out / "index.md").read_text(), printed:
        assert not any(line.startswith(r"\input") for line in text.splitlines())
    figures = list((out / "figures").iterdir())
    assert len(figures) == 12 and all(p.stat().st_size > 5000 for p in figures)


@pytest.mark.parametrize(
    "case", ["out is a file", "out is below a file", "results is a file", "tables is a file"]
)
def test_report_folder_problems_are_one_line(tmp_path, capsys, case):
    runs, notes = tmp_path / "runs", tmp_path / "notes.txt"
    crafted(runs, "toy", "naive")
    notes.write_text("keep me\n")
    argv, said = {
        "out is a file": (["report", str(runs), "--out", str(notes)], "is a file, not a folder"),
        "out is below a file": (["report", str(runs), "--out", str(notes / "r")], "is a file, not"),
        "results is a file": (["report", str(notes)], "is a file, not a folder"),
        "tables is a file": (["report", str(runs), "--out", str(tmp_path)], "cannot write report"),
    }[case]
    if case == "tables is a file":
        (tmp_path / "tables").write_text("not the report's\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and said in err
    assert notes.read_text() == "keep me\n"


@pytest.mark.parametrize("relative", ["../escape.md", "tables/../../escape.md", "{tmp}/escape.md"])
def test_a_path_outside_the_report_folder_is_refused(tmp_path, relative):
    """The last guard below the slugs: no file name, however made, leaves the report folder."""
    with pytest.raises(ClbenchError, match="outside the report folder"):
        write_inside(
            tmp_path / "report", relative.format(tmp=tmp_path), lambda tmp: tmp.write_text("x")
        )
    assert not list(tmp_path.rglob("*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_report_folder_is_one_line(tmp_path, capsys):
    runs, locked = tmp_path / "runs", tmp_path / "locked"
    crafted(runs, "toy", "naive")
    locked.mkdir(mode=0o500)
    assert main(["report", str(runs), "--out", str(locked / "report")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(locked / "report") in err


def test_bench_refuses_an_unusable_report_folder_before_the_sweep(tmp_path, capsys):
    results, report = tmp_path / "runs", tmp_path / "report"
    report.write_text("not a folder\n")
    argv = ["bench", "--suite", "smoke", "--results", str(results), "--report", str(report)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and f"report folder {report}: {report} is a file, not a folder" in err
    )
    assert not list(results.glob("*.json"))  # nothing ran
