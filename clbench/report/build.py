"""Write a whole report: per-benchmark tables and figures, a flat CSV of runs, and an index.

File names come from slugs of the names in the results (`text.FileStems`), never from the names
themselves, and every file is written atomically below the report folder (`text.write_inside`)."""

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
from clbench.report.text import FileStems, markdown, one_line, write_inside

Figure = tuple[str, list[Path]]  # (caption, files)


@dataclass
class ReportSummary:
    index: Path
    tables: dict[str, RenderedTable] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _write_text(out: Path, relative: str, text: str) -> Path:
    """Write `text` to `out/relative`, atomically (`text.write_inside`)."""
    return write_inside(out, relative, lambda tmp: tmp.write_text(text))


def ensure_report_folder(out: Path) -> None:
    """Refuse `out` (one line) unless it is, or can be made, a folder that files can be written
    to; called before any work, it creates nothing: where `out` does not exist yet, its nearest
    existing parent must be a writable folder."""
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ClbenchError(f"report folder {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ClbenchError(f"report folder {out}: {existing} is not writable")


def problems(collected: Collected) -> list[str]:
    """Everything a reader should know is absent from the tables, one line each (line breaks
    in names as spaces)."""
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
    lines += [f"left out: {u}" for u in collected.unreadable]
    return [one_line(line) for line in lines]


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
        lines += ["## Not in the tables", "", *[f"- {markdown(note)}" for note in notes], ""]
    for benchmark, table in tables.items():
        stem, wide = f"tables/{table.stem}", f"tables/{table.wide_stem}"
        lines += [
            f"## {markdown(benchmark)}",
            "",
            f"Table: [Markdown]({stem}.md), [CSV]({stem}.csv), LaTeX [one column]({stem}.tex) "
            f"and [full width]({wide}.tex) (booktabs)",
            "",
            table.markdown,
        ]
        for caption, paths in figures[benchmark]:
            png, pdf = (p.relative_to(out).as_posix() for p in paths)
            text = markdown(caption)
            lines += [f"{text} ([PDF]({pdf}))", "", f"![{text}]({png})", ""]
    return "\n".join(lines)


def write_report(results_dir: Path, out: Path) -> ReportSummary:
    """Read `results_dir`, write tables, figures and `index.md` into `out`."""
    results_dir, out = Path(results_dir), Path(out)
    if not results_dir.is_dir():
        why = "is a file, not a folder" if results_dir.exists() else "does not exist"
        raise ClbenchError(f"results folder {results_dir} {why}")
    collected = collect(results_dir)
    notes = problems(collected)
    if collected.runs.empty:
        raise ClbenchError(
            f"no valid result files in {results_dir}"
            + (f" ({len(notes)} failed or unreadable)" if notes else "")
        )
    ensure_report_folder(out)
    apply_style()
    runs = collected.runs
    table = summary_table(runs)
    published, sources = load_published()
    summary = ReportSummary(index=out / "index.md", problems=notes)
    figures: dict[str, list[Figure]] = {}
    table_stems, figure_stems = FileStems(), FileStems()
    for benchmark in sorted(runs["benchmark"].unique()):
        stems = (table_stems(benchmark), table_stems(benchmark, "wide"))
        rendered = render(table, benchmark, stems, published, sources)
        summary.tables[benchmark] = rendered
        for name, text in (
            (f"{rendered.stem}.md", rendered.markdown),
            (f"{rendered.stem}.tex", rendered.latex),
            (f"{rendered.wide_stem}.tex", rendered.latex_wide),
            (f"{rendered.stem}.csv", rendered.csv),
        ):
            _write_text(out, f"tables/{name}", text)
        mine = runs[runs["benchmark"] == benchmark]
        figures[benchmark] = [
            (drawn.caption, save(drawn, out / "figures", figure_stems))
            for draw in PER_BENCHMARK
            for drawn in draw(mine, benchmark)
        ]
        summary.figures += [p for _, paths in figures[benchmark] for p in paths]
    flat = runs.drop(columns=["matrix", "subspaces", "config", "varied"])
    _write_text(out, "runs.csv", flat.to_csv(index=False))
    _write_text(out, "index.md", _index(results_dir, out, runs, summary.tables, figures, notes))
    return summary
