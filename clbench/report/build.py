"""Write a whole report: per-benchmark tables and figures, a flat CSV of runs, and an index."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clbench.errors import ClbenchError
from clbench.report.collect import Collected, collect
from clbench.report.figures import PER_BENCHMARK, save
from clbench.report.published import load_published
from clbench.report.style import apply_style
from clbench.report.tables import RenderedTable, render, summary_table

Figure = tuple[str, list[Path]]  # (caption, files)


@dataclass
class ReportSummary:
    index: Path
    tables: dict[str, RenderedTable] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def problems(collected: Collected) -> list[str]:
    """Everything a reader should know is absent from the tables, one line each."""
    lines = [
        f"missing: {m['benchmark']} / {m['strategy']}"
        + (f" ({m['variant']})" if m["variant"] else "")
        + f" seed {m['seed']} (other rows of the benchmark have it)"
        for m in collected.missing
    ]
    lines += [
        f"failed: {f['benchmark']} / {f['strategy']} seed {f['seed']}: {f['error']}"
        for f in collected.failed
    ]
    lines += [f"unreadable result file (ignored): {u}" for u in collected.unreadable]
    return lines


def _index(
    results_dir: Path,
    out: Path,
    runs: pd.DataFrame,
    tables: dict[str, RenderedTable],
    figures: dict[str, list[Figure]],
    notes: list[str],
) -> str:
    lines = [
        "# clbench report",
        "",
        f"From {len(runs)} result files in `{results_dir}`. Mean ± std over seeds; ACC, BWT, "
        "forgetting and learning accuracy in points; time is train + evaluation wall time of "
        "the whole run; trainable parameters are those of the last task; memory kept is what a "
        "strategy stores between tasks (bases, samples, importances, adapters).",
        "",
    ]
    if notes:
        lines += ["## Not in the tables", "", *[f"- {note}" for note in notes], ""]
    for benchmark, table in tables.items():
        stem = f"tables/{benchmark}"
        lines += [
            f"## {benchmark}",
            "",
            f"Table: [Markdown]({stem}.md), [CSV]({stem}.csv), LaTeX [one column]({stem}.tex) "
            f"and [full width]({stem}-wide.tex) (booktabs)",
            "",
            table.markdown,
        ]
        for caption, paths in figures[benchmark]:
            png, pdf = (p.relative_to(out).as_posix() for p in paths)
            lines += [f"{caption} ([PDF]({pdf}))", "", f"![{caption}]({png})", ""]
    return "\n".join(lines)


def write_report(results_dir: Path, out: Path) -> ReportSummary:
    """Read `results_dir`, write tables, figures and `index.md` into `out`."""
    results_dir, out = Path(results_dir), Path(out)
    if not results_dir.is_dir():
        raise ClbenchError(f"results folder {results_dir} does not exist")
    collected = collect(results_dir)
    notes = problems(collected)
    if collected.runs.empty:
        raise ClbenchError(
            f"no valid result files in {results_dir}"
            + (f" ({len(notes)} failed or unreadable)" if notes else "")
        )
    apply_style()
    runs = collected.runs
    table = summary_table(runs)
    published, sources = load_published()
    summary = ReportSummary(index=out / "index.md", problems=notes)
    figures: dict[str, list[Figure]] = {}
    for benchmark in sorted(runs["benchmark"].unique()):
        rendered = render(table, benchmark, published, sources)
        summary.tables[benchmark] = rendered
        for name, text in (
            (f"{benchmark}.md", rendered.markdown),
            (f"{benchmark}.tex", rendered.latex),
            (f"{benchmark}-wide.tex", rendered.latex_wide),
            (f"{benchmark}.csv", rendered.csv),
        ):
            _write_text(out / "tables" / name, text)
        mine = runs[runs["benchmark"] == benchmark]
        figures[benchmark] = [
            (drawn.caption, save(drawn, out / "figures"))
            for draw in PER_BENCHMARK
            for drawn in draw(mine, benchmark)
        ]
        summary.figures += [p for _, paths in figures[benchmark] for p in paths]
    flat = runs.drop(columns=["matrix", "subspaces", "config", "varied"])
    _write_text(out / "runs.csv", flat.to_csv(index=False))
    _write_text(summary.index, _index(results_dir, out, runs, summary.tables, figures, notes))
    return summary
