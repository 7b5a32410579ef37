"""Comparison tables: mean +- std over seeds per benchmark and strategy, as CSV, Markdown and
LaTeX (booktabs), the best mean of each column in bold, published numbers beside measured ones."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clbench.report.published import Published, published_cell
from clbench.report.style import ordered


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    decimals: int
    higher_is_better: bool
    scale: float = 1.0


COLUMNS = [
    Column("acc", "ACC (%)", 2, True),
    Column("bwt", "BWT (pts)", 2, True),
    Column("forgetting", "Forgetting (pts)", 2, False),
    Column("learning_accuracy", "Learning acc. (%)", 2, True),
    Column("seconds", "Time (s)", 1, False),
    Column("trainable_params", "Trainable params", 0, False),
    Column("kept_bytes", "Memory kept (kB)", 1, False, scale=1e-3),
]


def row_label(strategy: str, variant: str) -> str:
    return f"{strategy} ({variant})" if variant else strategy


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (benchmark, strategy, variant): mean and std of every column, seed count."""
    keys = [c.key for c in COLUMNS]
    grouped = runs.groupby(["benchmark", "strategy", "variant"], sort=False)
    table = grouped[keys].agg(["mean", "std"])
    table.columns = [f"{key}_{stat}" for key, stat in table.columns]
    table["seeds"] = grouped["seed"].nunique()
    table = table.reset_index()
    order = {name: i for i, name in enumerate(ordered(table["strategy"]))}
    table["_order"] = table["strategy"].map(order)
    table = table.sort_values(["benchmark", "_order", "variant"]).drop(columns="_order")
    return table.reset_index(drop=True)


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _cells(table: pd.DataFrame, pm: str, bold: str) -> pd.DataFrame:
    """Formatted `mean pm std` cells; `bold` is a format string for the best cells."""
    cells = pd.DataFrame(index=table.index)
    for column in COLUMNS:
        means = table[f"{column.key}_mean"] * column.scale
        stds = table[f"{column.key}_std"] * column.scale
        best = means.max() if column.higher_is_better else means.min()
        texts = []
        for mean, std in zip(means, stds, strict=True):
            text = _number(mean, column.decimals)
            if not math.isnan(std):
                text += f" {pm} {_number(std, column.decimals)}"
            if len(means) > 1 and np.isclose(mean, best, rtol=0, atol=10**-column.decimals / 2):
                text = bold.format(text)
            texts.append(text)
        cells[column.title] = texts
    cells["Seeds"] = table["seeds"].astype(str)
    return cells


def _published_columns(
    table: pd.DataFrame, published: list[Published]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """`ACC published` / `BWT published` cells per row, and the sources they cite numbered in
    order of appearance; no columns when no row has a published number."""
    matches = [
        [p for p in published if p.benchmark == b and p.strategy == s]
        for b, s in zip(table["benchmark"], table["strategy"], strict=True)
    ]
    refs: dict[str, int] = {}
    if not any(matches):
        return {}, refs
    for entries in matches:
        for entry in entries:
            refs.setdefault(entry.source, len(refs) + 1)
    columns = {
        "ACC published": [published_cell(m, "acc", refs) for m in matches],
        "BWT published": [published_cell(m, "bwt", refs) for m in matches],
    }
    return columns, refs


@dataclass
class RenderedTable:
    benchmark: str
    csv: str
    markdown: str
    latex: str


def render(
    table: pd.DataFrame, benchmark: str, published: list[Published], sources: dict[str, str]
) -> RenderedTable:
    """The three renderings of one benchmark's rows of `summary_table`."""
    rows = table[table["benchmark"] == benchmark].reset_index(drop=True)
    labels = [row_label(s, v) for s, v in zip(rows["strategy"], rows["variant"], strict=True)]
    columns, refs = _published_columns(rows, published)
    footnotes = [f"[{n}] published: {sources[key]}" for key, n in refs.items()]
    md = _cells(rows, "±", "**{}**").assign(**columns)
    md.insert(0, "Strategy", labels)

    tex = _cells(rows, r"$\pm$", r"\textbf{{{}}}").assign(**columns)
    tex.insert(0, "Strategy", [label.replace("_", r"\_") for label in labels])
    tex.columns = [c.replace("%", r"\%") for c in tex.columns]
    latex = tex.to_latex(index=False, escape=False, column_format="l" + "r" * (tex.shape[1] - 1))
    latex = f"% {benchmark}: mean $\\pm$ std over seeds; best mean per column in bold\n{latex}"
    if footnotes:
        latex += "".join(f"% {note}\n" for note in footnotes)

    csv_rows = rows.copy()
    csv_rows.insert(2, "label", labels)
    if columns:
        csv_rows["acc_published"] = columns["ACC published"]
        csv_rows["bwt_published"] = columns["BWT published"]
    markdown = md.to_markdown(index=False, disable_numparse=True)
    if footnotes:
        markdown += "\n\n" + "\n".join(footnotes)
    return RenderedTable(benchmark, csv_rows.to_csv(index=False), markdown + "\n", latex)
