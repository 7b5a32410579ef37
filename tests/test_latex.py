"""The LaTeX tables compile with pdflatex and fit: the compact one in one column of a two-column
article, the wide one in the text width (read from the TeX log), with no overfull box. Rows are
the default suite's strategies (its grid variants' labels included) with the widest numbers the
zoo produces, plus published ones and the continual-evaluation metrics."""

import os
import re
import shutil
import subprocess

import pytest

from clbench.report import write_report
from clbench.strategies import STRATEGIES
from results import NO_FIGURES, curve_record, write_result

WIDEST = [[97.25, 0, 0], [10.0, 88.5, 0], [21.11, 35.55, 99.99]]
ROWS = [
    ("naive", {}),
    ("joint", {}),
    ("ewc", {}),
    ("gem", {}),
    ("gpm", {}),
    ("dfgp", {}),
    ("trgp", {}),
    ("ness", {}),
    ("adam-nscl", {}),
    ("from-scratch", {}),
    ("hybrid-magnitude", {}),
    ("hybrid-drift", {}),
    *[("gpcns", {"base": base}) for base in ("gpm", "sgp", "trgp")],
]
DOCUMENT = r"""\documentclass[twocolumn]{article}
\usepackage{booktabs}
\begin{document}
\input{TABLE}
\newsavebox\measured
\sbox\measured{TABULAR}
\typeout{CLBENCH-WIDTH \the\wd\measured\space ALLOWED \the\LIMIT}
\end{document}
"""


def points(length: str) -> float:
    return float(length.removesuffix("pt"))


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    for i, (strategy, params) in enumerate(ROWS):
        for seed in (0, 1, 2):
            matrix = [[v * (1 - 0.11 * seed * (i % 3)) for v in row] for row in WIDEST]
            write_result(
                folder,
                "cifar100-10",
                strategy,
                seed,
                matrix,
                seconds=1234.5 + 321 * seed,
                trainable=720_630 + i,
                kept=113_472_000 + i,
                strategy_params=params,
                strategy_info=STRATEGIES.get(strategy).info.as_dict(),
                continual=curve_record(matrix),
            )
    out = tmp_path_factory.mktemp("report")
    write_report(folder, out, NO_FIGURES)
    return out / "tables"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("cifar100-10", "columnwidth"),
        ("cifar100-10-wide", "textwidth"),
        ("cifar100-10-continual", "textwidth"),
    ],
)
def test_table_compiles_and_fits(tables, tmp_path, name, limit):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CLBENCH_REQUIRE_LATEX"):
            pytest.fail("pdflatex is not installed (CLBENCH_REQUIRE_LATEX is set)")
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-recommended)")
    table = (tables / f"{name}.tex").read_text()
    assert r"\toprule" in table and r"\caption{" in table and r"\label{tab:clbench-" in table
    assert table.count(r"\midrule") >= 5  # the header rule and one between each family
    tabular = re.search(r"(\\(footnotesize|small)\n.*\\end\{tabular\})", table, re.S).group(1)
    (tmp_path / "table.tex").write_text(table)
    document = DOCUMENT.replace("TABLE", "table.tex").replace("TABULAR", tabular)
    (tmp_path / "doc.tex").write_text(document.replace("LIMIT", limit))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log
    width, allowed = re.search(r"CLBENCH-WIDTH ([\d.]+pt) ALLOWED ([\d.]+pt)", log).groups()
    assert 0 < points(width) <= points(allowed), (width, allowed)
