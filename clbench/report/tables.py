"""Comparison tables: mean +- std over seeds per benchmark and strategy, as CSV, Markdown and two
LaTeX floats (booktabs): a compact one that fits one column of a two-column paper (ACC, BWT,
trainable parameters, memory, time) and a wide one for a full page (every column, published
numbers).
Strategies are grouped by family (`style.FAMILIES`, a rule between families in LaTeX); a
column's best value is bold only where it is the best of the non-oracle rows by more than the
larger of its and the runner-up's std (so neither the upper bound nor a tie within noise is bold);
published numbers stand beside measured ones where the benchmark has them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from clbench.report.published import (
    MARK,
    Published,
    footnote,
    published_cell,
    reference_key,
)
from clbench.report.style import ORACLES, family, ordered
from clbench.report.text import latex, markdown


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    decimals: int
    higher_is_better: bool
    scale: float = 1.0
    latex_title: str = ""
    compact: bool = False


COLUMNS = [
    Column("acc", "ACC (%)", 2, True, latex_title="ACC", compact=True),
    Column("bwt", "BWT (pts)", 2, True, latex_title="BWT", compact=True),
    Column("forgetting", "Forgetting (pts)", 2, False, latex_title="Forg."),
    Column("learning_accuracy", "Learning acc. (%)", 2, True, latex_title="Learn."),
    Column("trainable_params", "Trainable params (k)", 1, False, 1e-3, "Params", True),
    Column("kept_bytes", "Memory (MB)", 2, False, 1e-6, latex_title="Mem.", compact=True),
    Column("seconds", "Time (s)", 1, False, latex_title="Time", compact=True),
]


#: Columns whose std the full-width LaTeX table prints (forgetting's is close to BWT's; cost
#: columns barely vary across seeds).
SPREAD_SHOWN = ("acc", "bwt", "learning_accuracy")


def row_label(strategy: str, variant: str, short: bool = False) -> str:
    """`strategy (variant)`; `short` keeps only the variant's values (`gpcns (trgp)` for
    `base=trgp`), for the one-column table."""
    if short:
        variant = (
            ", ".join(part.split("=", 1)[-1] for part in variant.split(", ")) if variant else ""
        )
    return f"{strategy} ({variant})" if variant else strategy


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (benchmark, strategy, variant): mean and std of every column, seed count."""
    keys = [c.key for c in COLUMNS]
    grouped = runs.groupby(["benchmark", "strategy", "variant"], sort=False)
    table = grouped[keys].agg(["mean", "std"])
    table.columns = [f"{key}_{stat}" for key, stat in table.columns]
    table["seeds"] = grouped["seed"].nunique()
    table["config"] = grouped["config"].first()  # the same for every seed of a row
    table = table.reset_index()
    order = {name: i for i, name in enumerate(ordered(table["strategy"]))}
    table["_order"] = table["strategy"].map(order)
    table = table.sort_values(["benchmark", "_order", "variant"]).drop(columns="_order")
    return table.reset_index(drop=True)


def best_row(
    means: Sequence[float], stds: Sequence[float], oracle: Sequence[bool], column: Column
) -> int | None:
    """The row whose value is bold in `column`: the best non-oracle mean, where it beats the
    runner-up by more than the larger of the two stds (a missing std counts as 0) and by at least
    the column's last printed digit; None otherwise."""
    candidates = [i for i, m in enumerate(means) if not oracle[i] and not math.isnan(m)]
    if len(candidates) < 2:
        return None
    candidates.sort(key=lambda i: means[i], reverse=column.higher_is_better)
    best, second = candidates[:2]
    gap = abs(means[best] - means[second])
    noise = max(0.0 if math.isnan(stds[i]) else stds[i] for i in (best, second))
    return best if gap > noise and gap >= 10**-column.decimals else None


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _scaled(table: pd.DataFrame, column: Column) -> tuple[list[float], list[float]]:
    means = (table[f"{column.key}_mean"] * column.scale).tolist()
    stds = (table[f"{column.key}_std"] * column.scale).tolist()
    return means, stds


def _bold_rows(table: pd.DataFrame) -> dict[str, int | None]:
    oracle = [s in ORACLES for s in table["strategy"]]
    return {c.key: best_row(*_scaled(table, c), oracle, c) for c in COLUMNS}


def _markdown_cells(table: pd.DataFrame) -> pd.DataFrame:
    """`mean ± std` cells, the bold ones (`_bold_rows`) in **."""
    cells = pd.DataFrame(index=table.index)
    bold = _bold_rows(table)
    for column in COLUMNS:
        means, stds = _scaled(table, column)
        texts = []
        for i, (mean, std) in enumerate(zip(means, stds, strict=True)):
            text = _number(mean, column.decimals)
            if not math.isnan(std):
                text += f" ± {_number(std, column.decimals)}"
            texts.append(f"**{text}**" if bold[column.key] == i else text)
        cells[column.title] = texts
    cells["Seeds"] = table["seeds"].astype(str)
    return cells


def _published_columns(
    table: pd.DataFrame, published: list[Published]
) -> tuple[dict[str, list[str]], dict[tuple[str, str | None], int]]:
    """`ACC published` / `BWT published` cells per row, and the sources (with the setups of
    their numbers) they cite, numbered in order of appearance; no columns when no row has a
    published number."""
    matches = [
        [p for p in published if p.benchmark == b and p.strategy == s]
        for b, s in zip(table["benchmark"], table["strategy"], strict=True)
    ]
    refs: dict[tuple[str, str | None], int] = {}
    if not any(matches):
        return {}, refs
    for entries in matches:
        for entry in entries:
            refs.setdefault(reference_key(entry), len(refs) + 1)
    configs = list(table["config"])
    columns = {
        f"{metric.upper()} published": [
            published_cell(m, metric, refs, config)
            for m, config in zip(matches, configs, strict=True)
        ]
        for metric in ("acc", "bwt")
    }
    return columns, refs


def _tex_number(value: float, decimals: int, bold: bool) -> str:
    """A number in math mode (a true minus sign), thousands separated by a thin space."""
    text = _number(value, decimals).replace(",", r"\,")
    return f"$\\mathbf{{{text}}}$" if bold else f"${text}$"


def _tex_cell(mean: float, std: float, column: Column, bold: bool, with_std: bool) -> str:
    if math.isnan(mean):
        return "--"
    text = _tex_number(mean, column.decimals, bold)
    if with_std and not math.isnan(std):
        text += f"{{\\scriptsize${{\\pm}}{_number(std, column.decimals)}$}}"
    return text


def _tex_published(cell: str) -> str:
    """A published cell for LaTeX: `~` (approximate) as \\approx, `[n]` as a superscript, the
    other-setup mark as a dagger; several values in one formula, a thin space apart, in the
    small type of the stds."""
    parts = []
    for part in filter(None, cell.split("; ")):
        value, ref = part.rsplit(" ", 1)
        approx = r"\approx" if value.startswith("~") else ""
        mark = r"\dagger" if ref.endswith(MARK) else ""
        parts.append(f"{approx}{value.removeprefix('~')}^{{{ref.strip('[]' + MARK)}{mark}}}")
    return r"{\scriptsize$" + r",\,".join(parts) + "$}" if parts else "--"


def latex_table(
    rows: pd.DataFrame,
    benchmark: str,
    stem: str,
    published: dict[str, list[str]],
    sources: list[tuple[int, str]],
    wide: bool,
) -> str:
    """One benchmark's LaTeX float (module docstring), labelled `tab:clbench-STEM` after its
    file's stem; needs `\\usepackage{booktabs}`."""
    columns = [c for c in COLUMNS if wide or c.compact]
    bold = _bold_rows(rows)
    heads = ["Strategy", *(c.latex_title for c in columns)]
    published = published if wide else {}  # the one-column table keeps to the measured columns
    if published:
        heads += ["ACC pub.", "BWT pub."]
    body: list[str] = []
    previous = None
    for i, row in rows.iterrows():
        group = family(row["strategy"])
        if previous is not None and group != previous:
            body.append(r"\midrule")
        previous = group
        cells = [latex(row_label(row["strategy"], row["variant"], short=not wide))]
        for column in columns:
            mean = row[f"{column.key}_mean"] * column.scale
            std = row[f"{column.key}_std"] * column.scale
            with_std = wide and column.key in SPREAD_SHOWN
            cells.append(_tex_cell(mean, std, column, bold[column.key] == i, with_std))
        if published:
            cells.append(_tex_published(published["ACC published"][i]))
            cells.append(_tex_published(published["BWT published"][i]))
        body.append(" & ".join(cells) + r" \\")
    seeds = sorted(set(rows["seeds"]))
    seed_text = " or ".join(str(s) for s in seeds)
    spread = (
        "mean and std (forgetting and cost: mean)"
        if wide
        else "mean (the std is in the full-width table)"
    )
    caption = (
        f"{latex(benchmark)}: {spread} over {seed_text} seeds. ACC and learning accuracy "
        r"(Learn.) in \%, BWT and forgetting (Forg.) in points; Params: trainable parameters "
        "of the last task, in thousands; Mem.: what a strategy keeps between tasks, in MB; "
        "Time: training and evaluation of the whole run, in s, one CPU thread. Bold: the best "
        "value that is not an upper bound (joint), where it beats the runner-up by more than "
        "their std."
    )
    if sources and published:
        dagger = r"$^\dagger$"
        cited = "; ".join(
            f"$^{{{n}}}${latex(source).replace(MARK, dagger)}" for n, source in sources
        )
        caption += f" Published values: {cited}."
    env = "table*" if wide else "table"
    lines = [
        f"% clbench comparison table, {latex(benchmark)} ({'wide' if wide else 'one column'}); "
        "needs \\usepackage{booktabs}",
        f"\\begin{{{env}}}[t]",
        r"\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:clbench-{stem}}}",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{" + ("2pt" if wide else "3pt") + "}",
        r"\begin{tabular}{l" + "r" * (len(heads) - 1) + "}",
        r"\toprule",
        " & ".join(heads) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        f"\\end{{{env}}}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class RenderedTable:
    """One benchmark's table as text; `stem` and `wide_stem` name its files (`text.FileStems`)."""

    benchmark: str
    stem: str
    wide_stem: str
    csv: str
    markdown: str
    latex: str
    latex_wide: str


def render(
    table: pd.DataFrame,
    benchmark: str,
    stems: tuple[str, str],
    published: list[Published],
    sources: dict[str, str],
) -> RenderedTable:
    """The renderings of one benchmark's rows of `summary_table`; `stems`: the file stems of the
    one-column and the full-width table."""
    rows = table[table["benchmark"] == benchmark].reset_index(drop=True)
    labels = [row_label(s, v) for s, v in zip(rows["strategy"], rows["variant"], strict=True)]
    columns, refs = _published_columns(rows, published)
    cited = [(n, footnote(sources[source], setup)) for (source, setup), n in refs.items()]
    md = _markdown_cells(rows).assign(**columns)
    md.insert(0, "Strategy", [markdown(label) for label in labels])
    text = md.to_markdown(index=False, disable_numparse=True)
    if cited:
        text += "\n\n" + "\n".join(f"[{n}] published: {source}" for n, source in cited)

    csv_rows = rows.drop(columns="config")
    csv_rows.insert(2, "label", labels)
    if columns:
        csv_rows["acc_published"] = columns["ACC published"]
        csv_rows["bwt_published"] = columns["BWT published"]
    stem, wide_stem = stems
    return RenderedTable(
        benchmark,
        stem,
        wide_stem,
        csv_rows.to_csv(index=False),
        text + "\n",
        latex_table(rows, benchmark, stem, columns, cited, wide=False),
        latex_table(rows, benchmark, wide_stem, columns, cited, wide=True),
    )
