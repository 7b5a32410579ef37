"""Write a whole report: per-benchmark tables, pairwise comparisons and figures, a flat CSV of
runs, and an index that states where the runs come from.

File names come from slugs of the names in the results (`text.FileStems`), never from the names
themselves, and every file is written atomically below the report folder (`text.write_inside`)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clbench.errors import ClbenchError
from clbench.report import stats
from clbench.report.collect import Collected, collect
from clbench.report.conflicts import ConflictingRuns, find_conflicts
from clbench.report.figures import FIGURES, save
from clbench.report.layout import Selection, lay_out
from clbench.report.published import load_published
from clbench.report.style import apply_style
from clbench.report.tables import DEFAULT_ALPHA, RenderedTable, TableInput, render, summary_table
from clbench.report.text import FileStems, markdown, one_line, write_inside
from clbench.report.tuning import load_summary, tuned_runs, tuning_figure, tuning_tables

Figure = tuple[str, list[Path]]  # (caption, files)


@dataclass(frozen=True)
class ReportOptions:
    """How a report is written: which rows and names (`selection`), the spread of means
    (`stats.SPREADS`), the level of every test, the figures drawn (names of `FIGURES`), and
    whether runs that conflict (`clbench.report.conflicts`) may be pooled; `tuning`: the folder
    of a `clbench tune` whose comparison the report adds (`clbench.report.tuning`)."""

    selection: Selection = field(default_factory=Selection)
    spread: str = "std"
    alpha: float = DEFAULT_ALPHA
    figures: tuple[str, ...] = tuple(FIGURES)
    allow_mixed: bool = False
    tuning: Path | None = None

    def __post_init__(self) -> None:
        try:
            stats.check_spread(self.spread)
        except ValueError as err:
            raise ClbenchError(str(err)) from None
        if not 0 < self.alpha < 1:
            raise ClbenchError(f"significance level {self.alpha!r} must lie between 0 and 1")
        unknown = [name for name in self.figures if name not in FIGURES]
        if unknown:
            raise ClbenchError(
                f"unknown figure {', '.join(unknown)}; valid figures: {', '.join(FIGURES)}"
            )


@dataclass
class ReportSummary:
    index: Path
    tables: dict[str, RenderedTable] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


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


def _counted(values: pd.Series, describe=str) -> str:
    """Each distinct value with the number of runs that have it."""
    counts = Counter(describe(v) for v in values)
    if len(counts) == 1:
        return f"{next(iter(counts))} (every run)"
    return "; ".join(f"{value} ({n} runs)" for value, n in sorted(counts.items()))


def _commit(commit: object, dirty: object) -> str:
    if not commit:
        return "not in a git checkout"
    return f"`{str(commit)[:12]}`" + (" with uncommitted changes" if dirty else "")


def _versions(text: str) -> str:
    return ", ".join(f"{name} {version}" for name, version in sorted(json.loads(text).items()))


def provenance(results_dir: Path, out: Path, runs: pd.DataFrame, collected: Collected) -> list[str]:
    """The lines of the index that say what the report summarises and where it was measured."""
    where = Path(os.path.relpath(results_dir.resolve(), out.resolve())).as_posix()
    left_out = len(collected.unreadable)
    reasons = Counter(
        "a copy of a run already counted" if "counted once" in line else "invalid"
        for line in collected.unreadable
    )
    skipped = (
        f"; {left_out} file(s) left out ("
        + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        + ", each listed under *Not in the tables*)"
        if left_out
        else "; no file left out"
    )
    jobs = runs["jobs"].map(lambda j: "unrecorded" if j is None or j != j else int(j))
    return [
        "## Provenance",
        "",
        f"- Results: {len(runs)} runs from the result files in [`{markdown(where)}`]({where}) "
        f"(relative to this file){skipped}.",
        "- Commit: "
        + _counted(
            pd.Series(
                [_commit(c, d) for c, d in zip(runs["git_commit"], runs["git_dirty"], strict=True)]
            )
        )
        + f"; harness digest {_counted(runs['harness_digest'], lambda d: f'`{str(d)[:12]}`')}; "
        f"{runs['code_digest'].nunique()} code digests (harness and strategy together).",
        f"- Libraries: {_counted(runs['versions'], _versions)}.",
        f"- Machine: {markdown(_counted(runs['machine']))}; threads per run: "
        f"{_counted(runs['threads'])}; runs at a time: {_counted(jobs)}.",
        "",
    ]


def _index(
    results_dir: Path,
    out: Path,
    runs: pd.DataFrame,
    collected: Collected,
    summary: ReportSummary,
    figures: dict[str, list[Figure]],
    notes: list[str],
    tuning: list[str],
) -> str:
    lines = [
        "# clbench report",
        "",
        "Metrics as defined in clbench's README (Metrics); tasks are numbered from 1. Each table's "
        "caption states its seeds, spread, timing conditions and the test behind bold values; "
        "each benchmark's pairwise comparisons list every pair of rows with its p-value.",
        "",
        *provenance(results_dir, out, runs, collected),
    ]
    if summary.conflicts:
        lines += [
            "## Pooled on purpose (--allow-mixed)",
            "",
            *[f"- {markdown(line)}" for line in summary.conflicts],
            "",
        ]
    if notes:
        lines += ["## Not in the tables", "", *[f"- {markdown(note)}" for note in notes], ""]
    for benchmark, table in summary.tables.items():
        stem, wide = f"tables/{table.stem}", f"tables/{table.wide_stem}"
        continual = f"tables/{table.continual_stem}"
        pairs = f"tables/{table.pairwise_stem}"
        lines += [
            f"## {markdown(benchmark)}",
            "",
            f"Table: [Markdown]({stem}.md), [CSV]({stem}.csv), LaTeX [one column]({stem}.tex)"
            + (
                f", [full width]({wide}.tex) and [continual evaluation]({continual}.tex)"
                if table.latex_continual
                else f" and [full width]({wide}.tex)"
            )
            + f" (booktabs); pairwise comparisons: [Markdown]({pairs}.md), [CSV]({pairs}.csv)",
            "",
            table.markdown,
        ]
        for caption, paths in figures[benchmark]:
            png, pdf = (p.relative_to(out).as_posix() for p in paths)
            text = markdown(caption)
            lines += [f"{text} ([PDF]({pdf}))", "", f"![{text}]({png})", ""]
    return "\n".join(lines + tuning)


def _tuning_section(
    folder: Path,
    runs: pd.DataFrame,
    out: Path,
    summary: ReportSummary,
    stems: tuple[FileStems, FileStems],
) -> list[str]:
    """Write the tuning comparison's tables and figures (`clbench.report.tuning`); its lines of
    `index.md`."""
    table_stems, figure_stems = stems
    studies = load_summary(folder)
    lines = ["## Tuned against presets", ""]
    for table in tuning_tables(studies, runs, tuned_runs(folder)):
        stem = table_stems(table.benchmark, "tuning")
        _write_text(out, f"tables/{stem}.md", table.markdown + "\n")
        _write_text(out, f"tables/{stem}.csv", table.frame.to_csv(index=False))
        png, pdf = save(tuning_figure(table), out / "figures", figure_stems)
        summary.figures += [png, pdf]
        lines += [
            f"### {markdown(table.benchmark)}",
            "",
            f"Table: [Markdown](tables/{stem}.md), [CSV](tables/{stem}.csv)",
            "",
            table.markdown,
            "",
            f"![{markdown(table.benchmark)}: tuned against presets]"
            f"({png.relative_to(out).as_posix()}) ([PDF]({pdf.relative_to(out).as_posix()}))",
            "",
        ]
    return lines


def write_report(
    results_dir: Path, out: Path, options: ReportOptions | None = None
) -> ReportSummary:
    """Read `results_dir`, write tables, figures and `index.md` into `out`. Raises
    `ConflictingRuns` (its `lines` name each conflict) before writing anything where runs
    conflict and `options.allow_mixed` is off."""
    options = options or ReportOptions()
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
    runs, label_notes = lay_out(collected.runs, options.selection)
    if runs.empty:
        raise ClbenchError("--strategies and --benchmarks leave no run to report")
    conflicts = find_conflicts(runs)
    if conflicts and not options.allow_mixed:
        raise ConflictingRuns(conflicts)
    ensure_report_folder(out)
    apply_style()
    published, sources = load_published()
    summary = ReportSummary(
        index=out / "index.md", problems=notes + label_notes, conflicts=conflicts
    )
    figures: dict[str, list[Figure]] = {}
    table_stems, figure_stems = FileStems(), FileStems()
    for benchmark in runs["benchmark"].unique():
        mine = runs[runs["benchmark"] == benchmark]
        given = TableInput(
            benchmark, mine, summary_table(mine, options.spread), options.spread, options.alpha
        )
        stems = (
            table_stems(benchmark),
            table_stems(benchmark, "wide"),
            table_stems(benchmark, "continual"),
            table_stems(benchmark, "pairwise"),
        )
        rendered = render(given, stems, published, sources)
        summary.tables[benchmark] = rendered
        for name, text in (
            (f"{rendered.stem}.md", rendered.markdown),
            (f"{rendered.stem}.tex", rendered.latex),
            (f"{rendered.wide_stem}.tex", rendered.latex_wide),
            (f"{rendered.continual_stem}.tex", rendered.latex_continual),
            (f"{rendered.stem}.csv", rendered.csv),
            (f"{rendered.pairwise_stem}.md", rendered.pairwise_markdown),
            (f"{rendered.pairwise_stem}.csv", rendered.pairwise_csv),
        ):
            if text:  # no continual table where no run was evaluated continually
                _write_text(out, f"tables/{name}", text)
        figures[benchmark] = [
            (drawn.caption, save(drawn, out / "figures", figure_stems))
            for name in options.figures
            for drawn in FIGURES[name](mine, benchmark, options.spread)
        ]
        summary.figures += [p for _, paths in figures[benchmark] for p in paths]
    flat = runs.drop(columns=["matrix", "subspaces", "curve", "config", "varied", "config_key"])
    _write_text(out, "runs.csv", flat.to_csv(index=False))
    tuning = (
        _tuning_section(options.tuning, runs, out, summary, (table_stems, figure_stems))
        if options.tuning is not None
        else []
    )
    index = _index(results_dir, out, runs, collected, summary, figures, summary.problems, tuning)
    _write_text(out, "index.md", index)
    return summary
