"""Comparison tables, one per benchmark, from the rows of `clbench.report.layout`: mean and spread
over seeds (`stats.SPREADS`), as CSV, Markdown and LaTeX floats (booktabs, `FloatKind`): a compact
one that fits one column of a two-column paper (ACC, BWT, trainable parameters, memory, time), a
wide one for a full page (every column but the continual-evaluation metrics, published numbers)
and, where runs were evaluated continually, a wide one of ACC and BWT beside those metrics; and a
pairwise-comparison table.

Rows of one family are grouped (a rule between families in LaTeX). A value is bold only where a
test supports it (`winner`): every method row has at least `stats.MIN_SEEDS_FOR_CLAIM` seeds, the
best method beats every other method at the stated level, and bounds and oracles are never
candidates; times are compared only when every run was timed on one machine, with one thread
count and one number of runs at a time. Captions are written from the runs they describe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, cast

import numpy as np
import pandas as pd

from clbench.report import stats
from clbench.report.collect import CONTINUAL_METRICS
from clbench.report.published import (
    MARK,
    Published,
    footnote,
    published_cell,
    reference_key,
)
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
    unit: str = ""  # what a caption says of the column (time has a sentence of its own)


COLUMNS = [
    Column("acc", "ACC (%)", 2, True, latex_title="ACC", compact=True, unit="ACC in %"),
    Column("bwt", "BWT (pts)", 2, True, latex_title="BWT", compact=True, unit="BWT in points"),
    Column(
        "forgetting",
        "Forgetting (pts)",
        2,
        False,
        latex_title="Forg.",
        unit="forgetting (Forg.) in points",
    ),
    Column(
        "min_acc",
        "min-ACC (%)",
        2,
        True,
        latex_title="minACC",
        unit="average minimum accuracy of past tasks during training (minACC) in %",
    ),
    Column(
        "wc_acc",
        "WC-ACC (%)",
        2,
        True,
        latex_title="WCACC",
        unit="worst-case accuracy (WCACC) in %",
    ),
    Column(
        "windowed_forgetting",
        "WF10 (pts)",
        2,
        False,
        latex_title="WF10",
        unit="windowed forgetting over 10 evaluations (WF10) in points",
    ),
    Column(
        "stability_gap",
        "Stability gap (pts)",
        2,
        False,
        latex_title="Gap",
        unit="mean stability gap (Gap) in points",
    ),
    Column(
        "learning_accuracy",
        "Learning acc. (%)",
        2,
        True,
        latex_title="Learn.",
        unit="learning accuracy (Learn.) in %",
    ),
    Column(
        "average_incremental_accuracy",
        "Avg. inc. acc. (%)",
        2,
        True,
        latex_title="AIA",
        unit="average incremental accuracy (AIA) in %",
    ),
    Column(
        "forward_transfer",
        "FWT (pts)",
        2,
        True,
        latex_title="FWT",
        unit="forward transfer (FWT, against the untrained model) in points",
    ),
    Column(
        "trainable_params",
        "Trainable params (k)",
        1,
        False,
        1e-3,
        "Params",
        True,
        "trainable parameters of the last task (Params) in thousands",
    ),
    Column(
        "kept_bytes",
        "Memory (MB)",
        2,
        False,
        1e-6,
        latex_title="Mem.",
        compact=True,
        unit="memory kept between tasks (Mem.), stored samples included, in MB",
    ),
    Column("seconds", "Time (s)", 1, False, latex_title="Time", compact=True),
]
#: Columns whose spread the full-width LaTeX table prints (forgetting's is close to BWT's; cost
#: columns barely vary across seeds; the others' would not fit a page).
SPREAD_SHOWN = ("acc", "bwt")
#: Quantities the pairwise-comparison table tests, and its columns.
PAIRWISE = ("acc", "bwt")
PAIRWISE_COLUMNS = [
    "quantity",
    "a",
    "b",
    "mean_a",
    "mean_b",
    "difference",
    "test",
    "seeds_a",
    "seeds_b",
    "p",
    "p_holm",
    "better",
]
#: What decides whether two runs' times can be compared.
TIMING = ("machine", "threads", "jobs")
DEFAULT_ALPHA = 0.05
#: A summary line's statistics of a column that cells print: `<key>_mean`, `_low`, `_high`.
STATS = ("mean", "low", "high")


#: Columns only some runs define (forward transfer: one shared head; the continual-evaluation
#: metrics: `protocol.eval_every`), shown only where one of a table's runs does.
OPTIONAL = ("forward_transfer", *CONTINUAL_METRICS)


def shown_columns(runs: pd.DataFrame) -> list[Column]:
    """The columns of a benchmark's table, the `OPTIONAL` ones only where some run defines
    them."""
    return [c for c in COLUMNS if c.key not in OPTIONAL or runs[c.key].notna().any()]


def _values(rows: pd.DataFrame, key: str, scale: float = 1.0) -> list[tuple[int, float]]:
    return [(int(s), float(v) * scale) for s, v in zip(rows["seed"], rows[key], strict=True)]


def summary_table(runs: pd.DataFrame, spread: str) -> pd.DataFrame:
    """One line per (benchmark, row) of laid-out runs: label, role, family, seed count and, for
    every column, the mean, the standard deviation and the interval of `spread`
    (`stats.interval`, `_low` and `_high`) in the runs' units (bytes, parameters, seconds)."""
    lines = []
    for (benchmark, row), group in runs.groupby(["benchmark", "row"], sort=True):
        first = group.iloc[0]
        line = {
            "benchmark": benchmark,
            "row": row,
            "label": first["label"],
            "short_label": first["short_label"],
            "run_label": first["run_label"],
            "strategy": first["strategy"],
            "variant": first["variant"],
            "role": first["role"],
            "family": first["family"],
            "seeds": group["seed"].nunique(),
            "runs": len(group),
            "config": first["config"],
        }
        for column in COLUMNS:
            values = group[column.key].dropna().tolist()
            line[f"{column.key}_mean"] = float(np.mean(values)) if values else math.nan
            line[f"{column.key}_std"] = (
                float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            )
            line[f"{column.key}_low"], line[f"{column.key}_high"] = stats.interval(values, spread)
        lines.append(line)
    return pd.DataFrame(lines)


def _pairable(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two rows' runs pair by seed: each seed once a row, and every run of both on the
    same data (benchmark, data order, validation split, evaluated split: `collect.DATA_FIELDS`)."""
    same_data = a["data_key"].nunique() == 1 and set(a["data_key"]) == set(b["data_key"])
    return same_data and a["seed"].is_unique and b["seed"].is_unique


def comparable_times(runs: pd.DataFrame) -> bool:
    """Whether every run of `runs` records the same timing conditions (`TIMING`); a run that
    does not record one (older files do not record `jobs`) is not comparable."""
    return all(runs[key].notna().all() and runs[key].map(str).nunique() == 1 for key in TIMING)


def _by_row(runs: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Laid-out runs by row, in row order; rows are integers (`layout.lay_out`)."""
    return cast(dict[int, pd.DataFrame], dict(list(runs.groupby("row"))))


def winner(runs: pd.DataFrame, column: Column, alpha: float) -> int | None:
    """The row whose value is bold in `column` among one benchmark's laid-out runs: the method
    (role `method`) with the best mean, where every method row has at least
    `stats.MIN_SEEDS_FOR_CLAIM` seeds and the best beats each other method at level `alpha`
    (`stats.compare`: paired on shared seeds where both rows see the same data) and by at least
    the column's last printed digit; None otherwise, and always for times measured under
    different conditions (`comparable_times`)."""
    if column.key == "seconds" and not comparable_times(runs):
        return None
    methods = runs[(runs["role"] == "method") & runs[column.key].notna()]
    groups = _by_row(methods)
    if len(groups) < 2 or any(
        g["seed"].nunique() < stats.MIN_SEEDS_FOR_CLAIM for g in groups.values()
    ):
        return None
    means = {row: g[column.key].mean() * column.scale for row, g in groups.items()}
    best = (max if column.higher_is_better else min)(means, key=means.__getitem__)
    for row, group in groups.items():
        if row == best:
            continue
        if abs(means[best] - means[row]) < 10**-column.decimals:
            return None
        mine = groups[best]
        paired = _pairable(mine, group)
        result = stats.compare(
            _values(mine, column.key, column.scale),
            _values(group, column.key, column.scale),
            paired,
        )
        if not result.p < alpha:
            return None
    return best


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _spread_text(mean: float, low: float, high: float, decimals: int, spread: str) -> str:
    """The spread after a mean: `± h` (symmetric) or `[low, high]` (bootstrap); empty without."""
    if math.isnan(low):
        return ""
    if spread == "bootstrap":
        return f" [{_number(low, decimals)}, {_number(high, decimals)}]"
    return f" ± {_number(high - mean, decimals)}"


def _seed_phrase(seeds: Sequence[int]) -> str:
    low, high = min(seeds), max(seeds)
    if high == 1:
        return "one seed"
    return f"{high} seeds" if low == high else f"{low} to {high} seeds"


def caption(
    runs: pd.DataFrame, table: pd.DataFrame, columns: list[Column], spread: str, alpha: float
) -> str:
    """What a table of `columns` shows, from its runs: seeds, spread, units, timing conditions,
    the rule for bold and why nothing is bold where nothing is."""
    seeds = list(table["seeds"])
    if max(seeds) >= 2:
        spread_text = f"mean and {stats.SPREADS[spread]}"
        spread_text += "" if min(seeds) >= 2 else " (none for rows with one seed)"
    else:
        spread_text = "single runs, no spread"
    parts = [
        f"Over {_seed_phrase(seeds)}: {spread_text}.",
        "; ".join(c.unit for c in columns if c.unit) + ".",
    ]
    if comparable_times(runs):
        first = runs.iloc[0]
        jobs = first["jobs"]
        parts.append(
            f"Time: training and evaluation of the whole run in s, on {first['machine']} with "
            f"{int(first['threads'])} thread(s) per run, {int(jobs)} run(s) at a time."
        )
    else:
        parts.append(
            "Time: training and evaluation of the whole run in s, not compared: the runs differ "
            "in machine, thread count or number of runs at a time, or do not record them."
        )
    if min(seeds) < stats.MIN_SEEDS_FOR_CLAIM:
        parts.append(
            f"No value is bold: bold needs at least {stats.MIN_SEEDS_FOR_CLAIM} seeds per row."
        )
    else:
        parts.append(
            "Bold: the best method (bounds and oracles excluded) where it beats every other "
            f"method at significance level {alpha:g} (paired t-test on shared seeds, Welch's "
            "t-test otherwise) and by at least the last digit shown."
        )
    return " ".join(parts)


def _cells(
    table: pd.DataFrame, columns: list[Column], bold: dict[str, int | None], spread: str
) -> pd.DataFrame:
    """`mean ± spread` cells, the bold ones in **."""
    cells = pd.DataFrame(index=table.index)
    for column in columns:
        texts = []
        for _, line in table.iterrows():
            mean, low, high = (line[f"{column.key}_{s}"] * column.scale for s in STATS)
            if math.isnan(mean):
                texts.append("--")
                continue
            text = _number(mean, column.decimals) + _spread_text(
                mean, low, high, column.decimals, spread
            )
            texts.append(f"**{text}**" if bold[column.key] == line["row"] else text)
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


def _tex_plain(value: float, decimals: int) -> str:
    """A number for math mode, thousands separated by a thin space."""
    return _number(value, decimals).replace(",", r"\,")


def _tex_number(value: float, decimals: int, bold: bool) -> str:
    """A number in math mode (a true minus sign)."""
    text = _tex_plain(value, decimals)
    return f"$\\mathbf{{{text}}}$" if bold else f"${text}$"


def _tex_cell(line: pd.Series, column: Column, bold: bool, spread: str, with_spread: bool) -> str:
    mean, low, high = (line[f"{column.key}_{s}"] * column.scale for s in STATS)
    if math.isnan(mean):
        return "--"
    text = _tex_number(mean, column.decimals, bold)
    if with_spread and not math.isnan(low):
        digits = column.decimals
        inner = (
            rf"[{_tex_plain(low, digits)},\,{_tex_plain(high, digits)}]"
            if spread == "bootstrap"
            else rf"{{\pm}}{_tex_plain(high - mean, digits)}"
        )
        text += rf"{{\scriptsize${inner}$}}"
    return text


def _tex_published(cell: str) -> str:
    """A published cell for LaTeX: `~` (approximate) as \\approx, `[n]` as a superscript, the
    other-setup mark as a dagger; several values in one formula, a thin space apart, in the
    small type of the spreads."""
    parts = []
    for part in filter(None, cell.split("; ")):
        value, ref = part.rsplit(" ", 1)
        approx = r"\approx" if value.startswith("~") else ""
        mark = r"\dagger" if ref.endswith(MARK) else ""
        parts.append(f"{approx}{value.removeprefix('~')}^{{{ref.strip('[]' + MARK)}{mark}}}")
    return r"{\scriptsize$" + r",\,".join(parts) + "$}" if parts else "--"


@dataclass(frozen=True)
class TableInput:
    """One benchmark's laid-out runs and their summary lines, with how to state them."""

    benchmark: str
    runs: pd.DataFrame
    table: pd.DataFrame
    spread: str
    alpha: float

    @property
    def columns(self) -> list[Column]:
        return shown_columns(self.runs)

    def bold(self) -> dict[str, int | None]:
        return {c.key: winner(self.runs, c, self.alpha) for c in self.columns}


#: The LaTeX floats of a benchmark: one column (`compact` columns), full width (every column but
#: the continual-evaluation metrics, with the accuracy columns' spreads and published numbers)
#: and, where runs were evaluated continually, full width: ACC and BWT beside those metrics, each
#: with its spread.
FloatKind = Literal["column", "wide", "continual"]


def _float_columns(columns: list[Column], kind: FloatKind) -> list[Column]:
    if kind == "column":
        return [c for c in columns if c.compact]
    if kind == "wide":
        return [c for c in columns if c.key not in CONTINUAL_METRICS]
    return [c for c in columns if c.key in ("acc", "bwt", *CONTINUAL_METRICS)]


def latex_table(
    given: TableInput,
    stem: str,
    published: dict[str, list[str]],
    sources: list[tuple[int, str]],
    kind: FloatKind,
) -> str:
    """One benchmark's LaTeX float of `kind` (`FloatKind`), labelled `tab:clbench-STEM` after its
    file's stem; needs `\\usepackage{booktabs}`."""
    rows, bold = given.table, given.bold()
    wide = kind != "column"
    columns = _float_columns(given.columns, kind)
    spread_shown = SPREAD_SHOWN if kind == "wide" else [c.key for c in columns]
    heads = ["Strategy", *(c.latex_title for c in columns)]
    # published numbers are of ACC and BWT at task ends: the full-width table alone has them
    published = published if kind == "wide" else {}
    if published:
        heads += ["ACC pub.", "BWT pub."]
    body: list[str] = []
    previous = None
    for i, (_, line) in enumerate(rows.iterrows()):  # `published` has a cell per row, in order
        if previous is not None and line["family"] != previous:
            body.append(r"\midrule")
        previous = line["family"]
        cells = [latex(line["label"] if wide else line["short_label"])]
        for column in columns:
            with_spread = wide and column.key in spread_shown
            cells.append(
                _tex_cell(line, column, bold[column.key] == line["row"], given.spread, with_spread)
            )
        if published:
            cells.append(_tex_published(published["ACC published"][i]))
            cells.append(_tex_published(published["BWT published"][i]))
        body.append(" & ".join(cells) + r" \\")
    text = caption(given.runs, rows, columns, given.spread, given.alpha)
    if not wide and rows["seeds"].max() >= 2:
        text += " The spreads are in the full-width table."
    if sources and published:
        dagger = r"$^\dagger$"
        cited = "; ".join(
            f"$^{{{n}}}${latex(source).replace(MARK, dagger)}" for n, source in sources
        )
        text = f"{latex(text)} Published values: {cited}."
    else:
        text = latex(text)
    env = "table*" if wide else "table"
    lines = [
        f"% clbench comparison table, {latex(given.benchmark)} "
        f"({'wide' if wide else 'one column'}{', continual' if kind == 'continual' else ''}); "
        "needs \\usepackage{booktabs}",
        f"\\begin{{{env}}}[t]",
        r"\centering",
        f"\\caption{{{latex(given.benchmark)}. {text}}}",
        f"\\label{{tab:clbench-{stem}}}",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{" + ("1.5pt" if wide else "2.5pt") + "}",
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


def pairwise(runs: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Every pair of rows of one benchmark on each quantity of `PAIRWISE`: means, the test
    (`stats.compare`), its p-value, Holm's adjustment over the benchmark's pairs for that
    quantity, and which row is better at level `alpha` after it."""
    groups = _by_row(runs)
    lines = []
    for key in PAIRWISE:
        found = []
        for a, b in combinations(sorted(groups), 2):
            ra, rb = groups[a], groups[b]
            paired = _pairable(ra, rb)
            result = stats.compare(_values(ra, key), _values(rb, key), paired)
            found.append((ra, rb, result))
        adjusted = stats.holm([result.p for _, _, result in found])
        for (ra, rb, result), p_holm in zip(found, adjusted, strict=True):
            if math.isnan(p_holm):
                verdict = "not tested (fewer than 2 seeds)"
            elif p_holm >= alpha:
                verdict = "no difference shown"
            else:
                verdict = ra["label"].iloc[0] if result.difference > 0 else rb["label"].iloc[0]
            lines.append(
                {
                    "quantity": key,
                    "a": ra["label"].iloc[0],
                    "b": rb["label"].iloc[0],
                    "mean_a": ra[key].mean(),
                    "mean_b": rb[key].mean(),
                    "difference": result.difference,
                    "test": result.test,
                    "seeds_a": result.n_a,
                    "seeds_b": result.n_b,
                    "p": result.p,
                    "p_holm": p_holm,
                    "better": verdict,
                }
            )
    return pd.DataFrame(lines, columns=PAIRWISE_COLUMNS)


def _pairwise_markdown(table: pd.DataFrame, alpha: float) -> str:
    shown = pd.DataFrame(
        {
            "Quantity": table["quantity"].str.upper(),
            "A": table["a"].map(markdown),
            "B": table["b"].map(markdown),
            "A - B": table["difference"].map(lambda d: f"{d:+.2f}"),
            "Test": table["test"],
            "Seeds": [
                f"{a} / {b}" for a, b in zip(table["seeds_a"], table["seeds_b"], strict=True)
            ],
            "p": table["p"].map(lambda p: "--" if math.isnan(p) else f"{p:.3g}"),
            "p (Holm)": table["p_holm"].map(lambda p: "--" if math.isnan(p) else f"{p:.3g}"),
            "Better": table["better"].map(markdown),
        }
    )
    note = (
        f"Each pair of rows on ACC and BWT (points): a paired t-test on the seeds both rows "
        f"share where their seeds see the same data, Welch's t-test otherwise; p two-sided, "
        f"Holm's adjustment over the pairs of one quantity; Better: the higher row where "
        f"p (Holm) is below {alpha:g}."
    )
    return note + "\n\n" + shown.to_markdown(index=False, disable_numparse=True) + "\n"


@dataclass
class RenderedTable:
    """One benchmark's tables as text; `stem`, `wide_stem` and `continual_stem` name its files
    (`text.FileStems`), `pairwise_stem` its pairwise comparisons; `latex_continual` is empty where
    no run was evaluated continually."""

    benchmark: str
    stem: str
    wide_stem: str
    continual_stem: str
    pairwise_stem: str
    csv: str
    markdown: str
    latex: str
    latex_wide: str
    latex_continual: str
    pairwise_csv: str
    pairwise_markdown: str


def render(
    given: TableInput,
    stems: tuple[str, str, str, str],
    published: list[Published],
    sources: dict[str, str],
) -> RenderedTable:
    """The renderings of one benchmark's table; `stems`: the file stems of the one-column table,
    the full-width table, the continual-evaluation table and the pairwise comparisons."""
    rows = given.table
    columns, refs = _published_columns(rows, published)
    cited = [(n, footnote(sources[source], setup)) for (source, setup), n in refs.items()]
    md = _cells(rows, given.columns, given.bold(), given.spread).assign(**columns)
    md.insert(0, "Strategy", [markdown(label) for label in rows["label"]])
    text = md.to_markdown(index=False, disable_numparse=True)
    text += "\n\n" + markdown(caption(given.runs, rows, given.columns, given.spread, given.alpha))
    if cited:
        text += "\n\n" + "\n".join(f"[{n}] published: {source}" for n, source in cited)

    csv_rows = rows.drop(columns=["config", "short_label"])
    if columns:
        csv_rows["acc_published"] = columns["ACC published"]
        csv_rows["bwt_published"] = columns["BWT published"]
    compared = pairwise(given.runs, given.alpha)
    stem, wide_stem, continual_stem, pairwise_stem = stems
    continual = any(c.key in CONTINUAL_METRICS for c in given.columns)
    return RenderedTable(
        given.benchmark,
        stem,
        wide_stem,
        continual_stem,
        pairwise_stem,
        csv_rows.to_csv(index=False),
        text + "\n",
        latex_table(given, stem, columns, cited, "column"),
        latex_table(given, wide_stem, columns, cited, "wide"),
        latex_table(given, continual_stem, columns, cited, "continual") if continual else "",
        compared.to_csv(index=False),
        _pairwise_markdown(compared, given.alpha),
    )
