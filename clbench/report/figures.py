"""Paper-style figures from the runs of one benchmark.

Each figure is drawn at the width it is printed at (`SINGLE_COLUMN_IN` or `DOUBLE_COLUMN_IN`)
and saved without resizing, so the theme's point sizes (`style.apply_style`, nothing under
`MIN_FONT_PT`) are the printed ones. A row of the table (a strategy, or one grid variant of it)
keeps one colour and marker in every figure. Means are over seeds; bands and error bars are one
standard deviation over seeds, bands cut at the values a quantity can take. Every drawn series
carries its row label as its `gid`, and every label drawn appears in a legend, an axis tick or a
panel title (the tests check this). Names from result files are drawn as plain text
(`text.figure_text`: one line, no math text).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from clbench.report.collect import SUBSPACE_KINDS
from clbench.report.style import (
    DOUBLE_COLUMN_IN,
    ORACLES,
    PAGE_HEIGHT_IN,
    SINGLE_COLUMN_IN,
    RowStyle,
    ordered,
    row_styles,
)
from clbench.report.tables import row_label
from clbench.report.text import FileStems, figure_text, write_inside

LEGEND_COLUMNS = 5  # entries per legend line below a double-column figure
LEGEND_LINE_IN = 0.16
CELL_IN = 0.17  # one accuracy-matrix cell: room for "100" at 7 pt (12 pt wide)
ACCURACY_LIMITS = (0.0, 100.0)  # percent
SIZE_LIMITS = (0.0, math.inf)  # numbers of directions


@dataclass
class Drawn:
    """A finished figure before it is written: `parts` (the benchmark's name first) name its
    files (`text.FileStems`)."""

    parts: tuple[str, ...]
    caption: str
    figure: plt.Figure

    @property
    def stem(self) -> str:
        """The figure's name as read: its parts joined by `-`."""
        return "-".join(self.parts)


@dataclass
class Row:
    """One table row: its strategy, label, runs (one per seed) and style."""

    strategy: str
    label: str
    runs: pd.DataFrame
    style: RowStyle


def rows_of(runs: pd.DataFrame) -> list[Row]:
    """The table's rows in the zoo's order, grid variants of a strategy next to each other."""
    keyed = []
    for strategy in ordered(runs["strategy"]):
        mine = runs[runs["strategy"] == strategy]
        for variant in sorted(mine["variant"].unique()):
            keyed.append((strategy, variant, mine[mine["variant"] == variant]))
    styles = row_styles([(strategy, variant) for strategy, variant, _ in keyed])
    return [
        Row(strategy, figure_text(row_label(strategy, variant)), group, styles[(strategy, variant)])
        for strategy, variant, group in keyed
    ]


def save(drawn: Drawn, folder: Path, stems: FileStems | None = None) -> list[Path]:
    """Write `drawn` as PNG and PDF into `folder`, named by `stems` (the folder's other figures'
    names; none: a fresh `FileStems`), and release it."""
    stem = (stems or FileStems())(*drawn.parts)
    paths = [
        write_inside(
            folder, f"{stem}.{kind}", lambda tmp, kind=kind: drawn.figure.savefig(tmp, format=kind)
        )
        for kind in ("png", "pdf")
    ]
    plt.close(drawn.figure)
    return paths


def _std(values: pd.Series) -> float:
    """Standard deviation over seeds (ddof 1); 0 with a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _handle(row: Row, lines: bool) -> Line2D:
    return Line2D(
        [],
        [],
        color=row.style.color,
        marker=row.style.marker,
        lw=1.0 if lines else 0,
        label=row.label,
    )


def _legend_below(fig: plt.Figure, rows: Sequence[Row], lines: bool) -> None:
    """One key for every panel of `fig`: markers only for points, markers on lines for curves."""
    fig.legend(
        handles=[_handle(row, lines) for row in rows],
        loc="outside lower center",
        ncol=min(LEGEND_COLUMNS, len(rows)),
        handlelength=1.6,
        columnspacing=1.0,
    )


def _legend_height(rows: Sequence[Row]) -> float:
    return LEGEND_LINE_IN * math.ceil(len(rows) / LEGEND_COLUMNS) + 0.1


def _point(ax: plt.Axes, row: Row, x: pd.Series, y: pd.Series, size: float = 4) -> None:
    """Mean of (x, y) over seeds with one-std error bars in each direction that varies."""
    bars = ax.errorbar(
        np.mean(x),
        np.mean(y),
        xerr=_std(x) or None,
        yerr=_std(y) or None,
        fmt=row.style.marker,
        color=row.style.color,
        ms=size,
        elinewidth=0.6,
        capsize=1.5,
    )
    bars.lines[0].set_gid(row.label)


def _panels(rows: list[Row]) -> list[tuple[list[Row], str]]:
    """All rows, then, when some lie far below, the rows whose ACC is within 10 points of the
    best non-oracle's (`style.ORACLES`)."""
    contenders = [row for row in rows if row.strategy not in ORACLES] or rows
    best = max(row.runs["acc"].mean() for row in contenders)
    close = [row for row in rows if row.runs["acc"].mean() >= best - 10]
    panels = [(rows, "all strategies")]
    if len(close) < len(rows):
        panels.append((close, "ACC within 10 points of the best non-oracle"))
    return panels


def acc_bwt(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """ACC against BWT, a marker per row, with a zoom on the leading rows (`_panels`)."""
    rows = rows_of(runs)
    panels = _panels(rows)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(DOUBLE_COLUMN_IN, 2.5 + _legend_height(rows)), squeeze=False
    )
    for ax, (shown, title) in zip(axes[0], panels, strict=True):
        for row in shown:
            _point(ax, row, row.runs["bwt"], row.runs["acc"])
        ax.set_title(title)
        ax.set_xlabel("BWT (points; 0 = no forgetting)")
        ax.set_ylabel("ACC (%)")
    _legend_below(fig, rows, lines=False)
    caption = "ACC against BWT (error bars: one std over seeds); up and right is better."
    return [Drawn((benchmark, "acc-bwt"), caption, fig)]


def _mean_matrix(row: Row) -> np.ndarray:
    return np.mean(np.stack(list(row.runs["matrix"])), axis=0)


def _pages(items: Sequence, per_page: int) -> list[Sequence]:
    return [items[i : i + per_page] for i in range(0, len(items), per_page)]


def _page_parts(parts: tuple[str, ...], page: int, pages: int) -> tuple[str, ...]:
    return parts if pages == 1 else (*parts, str(page + 1))


def accuracy_matrices(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """R[t][j] per row (row t: after training task t; column j: task evaluated), values in the
    cells, one colour scale spanning the smallest to the largest value shown."""
    rows = rows_of(runs)
    means = [_mean_matrix(row) for row in rows]
    n_tasks = len(means[0])
    lower = np.tril(np.ones((n_tasks, n_tasks), dtype=bool))
    shown = np.concatenate([m[lower] for m in means])
    norm = plt.Normalize(math.floor(shown.min()), math.ceil(shown.max()))
    panel_in = n_tasks * CELL_IN + 0.35  # the cells, tick labels and title
    cols = max(1, int((DOUBLE_COLUMN_IN - 0.7) // panel_in))
    rows_per_page = max(1, int((PAGE_HEIGHT_IN - 0.5) // (panel_in + 0.25)))
    pages = _pages(list(zip(rows, means, strict=True)), cols * rows_per_page)
    ticks = [str(j + 1) if n_tasks <= 10 or j % 2 == 0 else "" for j in range(n_tasks)]
    drawn = []
    for page, members in enumerate(pages):
        lines = math.ceil(len(members) / cols)
        fig, axes = plt.subplots(
            lines, cols, figsize=(DOUBLE_COLUMN_IN, lines * (panel_in + 0.25) + 0.4), squeeze=False
        )
        for ax in axes.flat[len(members) :]:
            ax.set_visible(False)
        for ax, (row, matrix) in zip(axes.flat, members, strict=False):
            sns.heatmap(
                matrix,
                mask=~lower,
                norm=norm,
                cmap="viridis",
                cbar=False,
                square=True,
                annot=True,
                fmt=".0f",
                annot_kws={"fontsize": 7},
                xticklabels=ticks,
                yticklabels=ticks,
                ax=ax,
            )
            ax.collections[0].set_gid(row.label)
            ax.set_title(row.label)
            ax.grid(False)
            ax.tick_params(length=0, pad=1)
        fig.supxlabel("task evaluated")
        fig.supylabel("after training task")
        fig.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap="viridis"),
            ax=axes[:, -1].tolist(),
            shrink=min(1.0, 2.0 / lines),
            label="accuracy (%)",
        )
        caption = (
            "Accuracy matrices (mean over seeds): row t after training task t, column j the "
            "task evaluated."
        )
        if len(pages) > 1:
            caption += f" Page {page + 1} of {len(pages)}."
        parts = _page_parts((benchmark, "accuracy-matrices"), page, len(pages))
        drawn.append(Drawn(parts, caption, fig))
    return drawn


def _band(
    ax: plt.Axes, row: Row, x: np.ndarray, per_seed: np.ndarray, limits: tuple[float, float]
) -> None:
    """The mean over seeds of `per_seed` (seeds x len(x)) as a line, one std as a band cut to the
    values the quantity can take (`limits`: no negative rank, no accuracy over 100); NaN entries
    (no value yet) are left out."""
    with warnings.catch_warnings():  # a task where no seed has a value stays NaN: not drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(per_seed, axis=0), _nanstd(per_seed)
    (line,) = ax.plot(x, mean, color=row.style.color, marker=row.style.marker, ms=3)
    line.set_gid(row.label)
    low, high = np.clip(mean - std, *limits), np.clip(mean + std, *limits)
    band = ax.fill_between(x, low, high, color=row.style.color, alpha=0.15, lw=0)
    band.set_gid(row.label)


def _nanstd(per_seed: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(per_seed), axis=0)
    std = np.nanstd(per_seed, axis=0, ddof=1) if per_seed.shape[0] > 1 else 0 * per_seed[0]
    return np.where(counts > 1, std, 0.0)


def mean_accuracy(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """Mean accuracy over the tasks learned so far, after each task: mean_{j<=t} R[t][j]; with a
    zoom on the leading rows (`_panels`)."""
    rows = rows_of(runs)
    panels = _panels(rows)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(DOUBLE_COLUMN_IN, 2.5 + _legend_height(rows)), squeeze=False
    )
    for ax, (shown, title) in zip(axes[0], panels, strict=True):
        n_tasks = 0
        for row in shown:
            per_seed = np.stack(
                [[np.mean(m[t, : t + 1]) for t in range(len(m))] for m in row.runs["matrix"]]
            )
            n_tasks = per_seed.shape[1]
            _band(ax, row, np.arange(1, n_tasks + 1), per_seed, ACCURACY_LIMITS)
        ax.set_xticks(range(1, n_tasks + 1))
        ax.set_xlabel("tasks learned")
        ax.set_ylabel("mean accuracy on them (%)")
        ax.set_title(title)
    _legend_below(fig, rows, lines=True)
    caption = (
        "Mean accuracy over the tasks learned so far, after each task (band: one std over seeds, "
        "within 0-100 %)."
    )
    return [Drawn((benchmark, "mean-accuracy"), caption, fig)]


COSTS = [
    ("seconds", "train + eval time (s)", 1.0),
    ("trainable_params", "trainable parameters, last task (k)", 1e-3),
    ("kept_bytes", "memory kept between tasks (MB)", 1e-6),
]


def _zero_at(values: np.ndarray) -> float:
    """Where a zero is drawn on a log axis: a decade below the smallest positive value."""
    positive = values[values > 0]
    return 10.0 ** (math.floor(math.log10(positive.min())) - 1) if positive.size else 1.0


def _log_x(ax: plt.Axes, values: np.ndarray) -> None:
    """A log x axis over `values` labelled with plain numbers (1, 2, 5 per decade when the
    values span less than two decades); zeros, which a log axis cannot show, are drawn a decade
    below the smallest positive value at a tick labelled 0."""
    ax.set_xscale("log")
    low = _zero_at(values) if (values <= 0).any() else values.min()
    narrow = values.max() / low < 100
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if (values <= 0).any():
        zero = _zero_at(values)
        high = max(values.max(), 10 * zero) * 2  # all zeros: one empty decade beside them
        ax.set_xlim(zero / 2, high)
        ticks = [t for t in ax.get_xticks() if zero * 1.5 < t <= high]
        ax.set_xticks([zero, *ticks], ["0", *[f"{t:g}" for t in ticks]])


def cost(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """Wall time, trainable parameters of the last task and memory kept, per row, on log axes."""
    rows = rows_of(runs)
    fig, axes = plt.subplots(
        1, len(COSTS), figsize=(DOUBLE_COLUMN_IN, 0.7 + 0.15 * len(rows)), sharey=True
    )
    positions = np.arange(len(rows))
    for ax, (key, title, scale) in zip(axes, COSTS, strict=True):
        means = np.array([row.runs[key].mean() * scale for row in rows])
        zero = _zero_at(means)
        for y, row, mean in zip(positions, rows, means, strict=True):
            x = row.runs[key] * scale if mean > 0 else pd.Series([zero] * len(row.runs))
            _point(ax, row, x, pd.Series([y] * len(row.runs)), size=3.5)
        _log_x(ax, means)
        ax.set_xlabel(title)
    axes[0].set_yticks(positions, [row.label for row in rows])
    axes[0].invert_yaxis()  # shared: the first row at the top
    fig.suptitle(f"{figure_text(benchmark)}: cost per strategy (mean over seeds, log scale)")
    caption = (
        "Cost on log axes: wall time, trainable parameters in the last task, memory kept between "
        "tasks (error bars: one std over seeds; 0: the strategy keeps nothing)."
    )
    return [Drawn((benchmark, "cost"), caption, fig)]


def accuracy_vs_cost(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """ACC against the memory kept and against wall time (log axes)."""
    rows = rows_of(runs)
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN_IN, 2.5 + _legend_height(rows)))
    for ax, (key, title, scale) in zip(axes, (COSTS[2], COSTS[0]), strict=True):
        means = np.array([row.runs[key].mean() * scale for row in rows])
        zero = _zero_at(means)
        for row, mean in zip(rows, means, strict=True):
            x = row.runs[key] * scale if mean > 0 else pd.Series([zero] * len(row.runs))
            _point(ax, row, x, row.runs["acc"])
        _log_x(ax, means)
        ax.set_xlabel(title)
        ax.set_ylabel("ACC (%)")
    axes[0].set_title("accuracy against memory")
    axes[1].set_title("accuracy against time")
    _legend_below(fig, rows, lines=False)
    caption = (
        "ACC against memory kept between tasks and against wall time, log axes (error bars: one "
        "std over seeds; 0: the strategy keeps nothing)."
    )
    return [Drawn((benchmark, "accuracy-vs-cost"), caption, fig)]


SUBSPACE_COLUMNS = 3  # layer panels per line
# A kept basis is recorded after its task trains; a null space is the one its task trained in.
SUBSPACE_X = {"kept basis size": "after training task", "null-space rank": "task trained"}
SUBSPACE_CAPTIONS = {
    "kept basis size": "Size of the kept (protected) basis per layer after each task",
    "null-space rank": "Null-space rank per layer: the dimension of the space each task after "
    "the first trained in",
}


def subspaces(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """Per layer and task, the size of the kept basis (projection family) or the null-space rank
    (null-space family), one line per row that records it; a page holds at most what fits
    `PAGE_HEIGHT_IN`."""
    rows = rows_of(runs)
    drawn = []
    for kind in [k for k in SUBSPACE_KINDS.values() if k in _kinds(rows)]:
        recording = [row for row in rows if all(kind in s for s in row.runs["subspaces"])]
        layers = list(dict.fromkeys(layer for row in recording for layer in _layers(row, kind)))
        cols = min(SUBSPACE_COLUMNS, len(layers))
        per_page = cols * max(1, int((PAGE_HEIGHT_IN - _legend_height(recording)) // 1.9))
        pages = _pages(layers, per_page)
        for page, shown in enumerate(pages):
            fig = _subspace_page(recording, kind, shown, cols)
            parts = _page_parts((benchmark, kind.replace(" ", "-")), page, len(pages))
            caption = SUBSPACE_CAPTIONS[kind] + " (band: one std over seeds, cut at 0)."
            if len(pages) > 1:
                caption += f" Page {page + 1} of {len(pages)}."
            drawn.append(Drawn(parts, caption, fig))
    return drawn


def _subspace_page(rows: Sequence[Row], kind: str, layers: Sequence[str], cols: int) -> plt.Figure:
    lines = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(
        lines, cols, figsize=(DOUBLE_COLUMN_IN, 1.9 * lines + _legend_height(rows)), squeeze=False
    )
    for ax in axes.flat[len(layers) :]:
        ax.set_visible(False)
    for ax, layer in zip(axes.flat, layers, strict=False):
        for row in rows:
            n_tasks = len(row.runs["matrix"].iloc[0])
            per_seed = np.array(
                [s[kind].get(layer, [math.nan] * n_tasks) for s in row.runs["subspaces"]],
                dtype=float,
            )
            if not np.isnan(per_seed).all():
                _band(ax, row, np.arange(1, n_tasks + 1), per_seed, SIZE_LIMITS)
        ax.set_title(f"layer {figure_text(layer)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(SUBSPACE_X[kind])
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{kind} (directions)")
    _legend_below(fig, rows, lines=True)
    return fig


def _kinds(rows: Sequence[Row]) -> set[str]:
    return {kind for row in rows for s in row.runs["subspaces"] for kind in s}


def _layers(row: Row, kind: str) -> list[str]:
    return list(dict.fromkeys(layer for s in row.runs["subspaces"] for layer in s[kind]))


def sensitivity(runs: pd.DataFrame, benchmark: str) -> list[Drawn]:
    """ACC and BWT against a swept parameter (one column wide), for every strategy whose runs
    sweep exactly one numeric parameter."""
    drawn = []
    for strategy in ordered(runs["strategy"]):
        mine = runs[runs["strategy"] == strategy]
        swept = {key for varied in mine["varied"] for key in varied}
        if len(swept) != 1:
            continue
        (parameter,) = swept
        values = mine["varied"].map(lambda v, p=parameter: v[p])
        if not all(isinstance(v, int | float) for v in values):
            continue
        short = parameter.split(".", 1)[-1]
        name, swept_name = figure_text(strategy), figure_text(short)
        points = mine.assign(value=values.astype(float)).groupby("value")[["acc", "bwt"]]
        mean, std = points.mean(), points.std().fillna(0)
        fig, axes = plt.subplots(2, 1, figsize=(SINGLE_COLUMN_IN, 3.2), sharex=True)
        for ax, metric, title in zip(
            axes, ("acc", "bwt"), ("ACC (%)", "BWT (points)"), strict=True
        ):
            bars = ax.errorbar(
                mean.index, mean[metric], yerr=std[metric], marker="o", ms=3, capsize=1.5
            )
            bars.lines[0].set_gid(name)
            if mean.index.min() > 0 and mean.index.max() / mean.index.min() >= 100:
                ax.set_xscale("log")
            ax.set_ylabel(title)
        axes[0].set_title(f"{name}: sensitivity to {swept_name}")
        axes[1].set_xlabel(swept_name)
        drawn.append(
            Drawn(
                (benchmark, strategy, short, "sensitivity"),
                f"Sensitivity of {strategy} to {short} (error bars: one std over seeds).",
                fig,
            )
        )
    return drawn


PER_BENCHMARK: list[Callable[[pd.DataFrame, str], list[Drawn]]] = [
    acc_bwt,
    mean_accuracy,
    accuracy_matrices,
    cost,
    accuracy_vs_cost,
    subspaces,
    sensitivity,
]
