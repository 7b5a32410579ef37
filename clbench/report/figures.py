"""Paper-style figures from the laid-out runs of one benchmark (`FIGURES`).

Each figure is drawn at the width it is printed at (`SINGLE_COLUMN_IN` or `DOUBLE_COLUMN_IN`)
and saved without resizing, so the theme's point sizes (`style.apply_style`, nothing under
`MIN_FONT_PT`) are the printed ones. Rows (column `row`, a strategy or one grid variant of it)
are drawn in their order and keep one colour and marker in every figure. Means are over seeds;
error bars and bands are the spread asked for (`stats.interval`), cut at the values a quantity
can take, and absent where a row has one seed. Every drawn series carries its row's label as its
`gid`, and every label drawn appears in a legend, an axis tick or a panel title. Names from
result files are drawn as plain text (`text.figure_text`), wrapped to the room they have;
legends take as many columns as fit, and tick labels are thinned until none overlap.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axis import XAxis, YAxis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from clbench.metrics import Curve
from clbench.report.stats import SPREADS, interval
from clbench.report.style import (
    DOUBLE_COLUMN_IN,
    PAGE_HEIGHT_IN,
    SINGLE_COLUMN_IN,
    RowStyle,
    row_styles,
)
from clbench.report.text import FileStems, figure_text, write_inside

PANEL_IN = 2.5  # height of a line of scatter or curve panels, axis labels included
CELL_IN = 0.17  # one accuracy-matrix cell: room for "100" at 7 pt (12 pt wide)
TICK_LABEL_MAX_IN = 2.3  # row labels on a cost axis are wrapped to this width
ACCURACY_LIMITS = (0.0, 100.0)  # percent
BWT_LIMITS = (-100.0, 100.0)  # points
SIZE_LIMITS = (0.0, math.inf)  # numbers of directions
NO_LIMITS = (-math.inf, math.inf)
TICK_GAP_PT = 2.0  # the least room between two tick labels
EDGE_IN = 0.1  # what the layout leaves free at a figure's left and right edges together


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
    """One table row: its label (as drawn, one line), role, runs (one per seed) and style."""

    label: str
    role: str
    runs: pd.DataFrame
    style: RowStyle


def rows_of(runs: pd.DataFrame) -> list[Row]:
    """The rows of `runs` in their order (column `row`), labelled and styled."""
    groups = list(runs.groupby("row", sort=True))
    styles = row_styles([row for row, _ in groups])
    return [
        Row(figure_text(str(group["label"].iloc[0])), group["role"].iloc[0], group, styles[row])
        for row, group in groups
    ]


def save(drawn: Drawn, folder: Path, stems: FileStems | None = None) -> list[Path]:
    """Write `drawn` as PNG and PDF into `folder`, named by `stems` (the folder's other figures'
    names; none: a fresh `FileStems`), and release it."""
    stem = (stems or FileStems())(*drawn.parts)
    paths = [
        write_inside(folder, f"{stem}.{kind}", functools.partial(drawn.figure.savefig, format=kind))
        for kind in ("png", "pdf")
    ]
    plt.close(drawn.figure)
    return paths


# --- captions -------------------------------------------------------------------------------


def _seed_counts(rows: Sequence[Row]) -> tuple[int, int]:
    counts = [row.runs["seed"].nunique() for row in rows]
    return min(counts), max(counts)


def _over_seeds(rows: Sequence[Row]) -> str:
    """`one seed`, `mean over 3 seeds` or `mean over 1 to 3 seeds`."""
    low, high = _seed_counts(rows)
    if high == 1:
        return "one seed"
    return f"mean over {high} seeds" if low == high else f"mean over {low} to {high} seeds"


def _caption(what: str, rows: Sequence[Row], spread: str, marks: str = "", cut: str = "") -> str:
    """`what (seeds; marks: the spread, cut)`: the spread only where some row has two seeds."""
    note = _over_seeds(rows)
    low, high = _seed_counts(rows)
    if marks and high > 1:
        note += f"; {marks}: {SPREADS[spread]}{cut}"
        if low == 1:
            note += ", none for a row with one seed"
    return f"{what} ({note})."


# --- text that fits -------------------------------------------------------------------------


@functools.cache
def _renderer() -> RendererAgg:
    return RendererAgg(8, 8, 72)  # at 72 dpi, a pixel is a point


def _width_in(text: str, size: float) -> float:
    """Printed width (inches) of `text`'s widest line at `size` points in the theme's font."""
    font = FontProperties(size=size)
    return (
        max(
            _renderer().get_text_width_height_descent(line, font, ismath=False)[0]
            for line in text.split("\n")
        )
        / 72
    )


# Where a line may break: after a space; failing that, after a separator too.
_BREAKS = (re.compile(r"(?<= )"), re.compile(r"(?<=[ \-_=,/])"))
# What a line never breaks inside: a `$` escaped by `figure_text`, or one character.
_UNIT = re.compile(r"\\\$|.", re.DOTALL)


def _fits(line: str, width: float, size: float) -> bool:
    return _width_in(line.rstrip(), size) <= width


def _lines(pieces: Sequence[str], width: float, size: float) -> list[str]:
    """`pieces` joined into lines, each as long as still fits `width` inches."""
    lines: list[str] = []
    for piece in pieces:
        if lines and _fits(lines[-1] + piece, width, size):
            lines[-1] += piece
        else:
            lines.append(piece)
    return lines


def _wrap(text: str, width: float, size: float) -> str:
    """`text` in lines at most `width` inches wide at `size` points: broken at spaces where that
    is enough, else after separators too (`_BREAKS`), a piece wider than a line between
    characters. Every character stays: removing the line breaks gives `text` back."""
    for breaks in _BREAKS:
        lines = _lines(breaks.split(text), width, size)
        if all(_fits(line, width, size) for line in lines):
            return "\n".join(lines)
    pieces = [
        unit
        for piece in _BREAKS[-1].split(text)
        for unit in ([piece] if _fits(piece, width, size) else _UNIT.findall(piece))
    ]
    return "\n".join(_lines(pieces, width, size))


def _fit(text: str, width: float, size: float) -> str:
    """`text` as it is if it fits `width` inches, else wrapped again (`_wrap`)."""
    return text if _width_in(text, size) <= width else _wrap(text.replace("\n", ""), width, size)


def _points(size: float | str) -> float:
    return FontProperties(size=size).get_size_in_points()


def _tidy(fig: plt.Figure) -> None:
    """Once `fig` is laid out: its panel titles and axis labels wrapped to their panel, its
    suptitle to the figure, then every axis's tick labels thinned until none overlap."""
    fig.draw_without_rendering()
    room: list[tuple[Text, float]] = []
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        box = ax.get_window_extent()
        width, height = box.width / fig.dpi, box.height / fig.dpi
        room += [(ax.title, width), (ax.xaxis.label, width), (ax.yaxis.label, height)]
    # Matplotlib keeps the suptitle's Text (None before `suptitle`) in a private attribute its
    # stubs leave out; `get_suptitle` gives only the string.
    suptitle: Text | None = fig._suptitle  # type: ignore[attr-defined]
    if suptitle is not None:
        room.append((suptitle, fig.get_figwidth() - EDGE_IN))
    wrapped = False
    for text, width in room:
        fitted = _fit(text.get_text(), width, text.get_fontproperties().get_size_in_points())
        if fitted != text.get_text():
            text.set_text(fitted)
            wrapped = True
    if wrapped:
        fig.draw_without_rendering()
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # figures are drawn with Agg (`apply_style`)
    renderer = canvas.get_renderer()
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        _thin(ax.xaxis, renderer, fig.dpi)
        _thin(ax.yaxis, renderer, fig.dpi)


def _thin(axis: XAxis | YAxis, renderer: RendererAgg, dpi: float) -> None:
    """Keep the label of every k-th major tick in view (the first one's included), k the
    smallest at which no two labels come closer than `TICK_GAP_PT`."""
    low, high = sorted(axis.get_view_interval())
    locs = axis.get_majorticklocs()
    ticks = [
        (loc, tick.label1)
        for loc, tick in zip(locs, axis.get_major_ticks(len(locs)), strict=True)
        if low <= loc <= high and tick.label1.get_visible()
    ]
    if not any(label.get_text() for _, label in ticks):
        return
    horizontal = axis.axis_name == "x"
    spans = [
        (box.x0, box.x1) if horizontal else (box.y0, box.y1)
        for box in (label.get_window_extent(renderer) for _, label in ticks)
    ]
    order = np.argsort([a for a, _ in spans])
    gap = TICK_GAP_PT * dpi / 72
    for step in range(1, len(ticks) + 1):
        kept = [spans[i] for n, i in enumerate(order) if n % step == 0]
        if all(a[1] + gap <= b[0] for a, b in zip(kept, kept[1:], strict=False)):
            break
    if step > 1:
        shown = {int(i) for n, i in enumerate(order) if n % step == 0}
        axis.set_ticks(
            [loc for loc, _ in ticks],
            [label.get_text() if i in shown else "" for i, (_, label) in enumerate(ticks)],
        )


# --- legends --------------------------------------------------------------------------------


@dataclass
class Key:
    """A legend below a figure: its entries' texts (wrapped), columns and height (inches)."""

    texts: list[str]
    columns: int
    height: float


def _key(labels: Sequence[str], width: float) -> Key:
    """The legend of `labels` laid out for a figure `width` inches wide: as many columns as the
    measured entries fit, as few as give the same number of lines (entries run down columns,
    as `matplotlib.legend` splits them)."""
    size = _points(mpl.rcParams["legend.fontsize"])
    em = size / 72
    room = width - EDGE_IN - 2 * mpl.rcParams["legend.borderpad"] * em
    handle = (mpl.rcParams["legend.handlelength"] + mpl.rcParams["legend.handletextpad"]) * em
    texts = [_fit(label, room - handle, size) for label in labels]
    widths = [handle + _width_in(text, size) for text in texts]
    spacing = mpl.rcParams["legend.columnspacing"] * em
    columns = 1
    for n in range(len(texts), 0, -1):
        parts = [p for p in np.array_split(np.arange(len(texts)), n) if len(p)]
        if sum(max(widths[i] for i in p) for p in parts) + spacing * (n - 1) <= room:
            columns = n
            break
    lines = math.ceil(len(texts) / columns)
    columns = math.ceil(len(texts) / lines)
    parts = np.array_split(np.arange(len(texts)), columns)
    text_lines = sum(
        max(texts[p[i]].count("\n") + 1 for p in parts if i < len(p)) for i in range(lines)
    )
    spacing_lines = mpl.rcParams["legend.labelspacing"] * (lines - 1)
    pads = 2 * mpl.rcParams["legend.borderpad"] + mpl.rcParams["legend.borderaxespad"]
    return Key(texts, columns, (1.2 * text_lines + spacing_lines + pads) * em)


def _legend_below(fig: plt.Figure, handles: Sequence[Line2D], key: Key) -> None:
    """One legend for every panel of `fig`, below them, laid out as `key`."""
    fig.legend(handles=handles, loc="outside lower center", ncol=key.columns)


def _rows_key(rows: Sequence[Row]) -> Key:
    return _key([row.label for row in rows], DOUBLE_COLUMN_IN)


def _rows_legend(fig: plt.Figure, rows: Sequence[Row], key: Key, lines: bool) -> None:
    """The rows' legend: markers only for points, markers on lines for curves."""
    handles = [
        Line2D(
            [],
            [],
            color=row.style.color,
            marker=row.style.marker,
            lw=1.0 if lines else 0,
            label=text,
        )
        for row, text in zip(rows, key.texts, strict=True)
    ]
    _legend_below(fig, handles, key)


# --- marks ----------------------------------------------------------------------------------


def _error(values: pd.Series, spread: str, limits: tuple[float, float]) -> list | None:
    """The spread of `values` around their mean as matplotlib error sizes, cut at `limits`;
    None with one value."""
    low, high = np.clip(interval(list(values), spread), *limits)
    if math.isnan(low):
        return None
    mean = float(np.mean(values))
    return [[mean - low], [high - mean]]


def _point(
    ax: plt.Axes,
    row: Row,
    x: pd.Series,
    y: pd.Series,
    spread: str,
    limits: tuple[tuple[float, float], tuple[float, float]],
    size: float = 4,
) -> None:
    """Mean of (x, y) over seeds, with error bars of the spread in each direction (`limits`:
    x's and y's) where there are two seeds or more."""
    bars = ax.errorbar(
        np.mean(x),
        np.mean(y),
        xerr=_error(x, spread, limits[0]),
        yerr=_error(y, spread, limits[1]),
        fmt=row.style.marker,
        color=row.style.color,
        ms=size,
        elinewidth=0.6,
        capsize=1.5,
    )
    bars.lines[0].set_gid(row.label)


def _band(
    ax: plt.Axes,
    x: np.ndarray,
    per_seed: np.ndarray,
    spread: str,
    limits: tuple[float, float],
    style: RowStyle,
    gid: str,
    size: float = 3,
) -> None:
    """The mean over seeds of `per_seed` (seeds x len(x)) as a line, the spread as a band cut to
    the values the quantity can take (`limits`: no negative rank, no accuracy over 100); NaN
    entries (no value yet) are left out, and so is the band where fewer than two seeds have a
    value."""
    with warnings.catch_warnings():  # a task where no seed has a value stays NaN: not drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(per_seed, axis=0)
    (line,) = ax.plot(x, mean, color=style.color, marker=style.marker, ms=size)
    line.set_gid(gid)
    bounds = np.array([interval(column[~np.isnan(column)], spread) for column in per_seed.T])
    if np.isnan(bounds).all():
        return
    low, high = np.clip(bounds, *limits).T
    band = ax.fill_between(x, low, high, color=style.color, alpha=0.15, lw=0)
    band.set_gid(gid)


# --- pages ----------------------------------------------------------------------------------


def _pages(items: Sequence, per_page: int) -> list[Sequence]:
    return [items[i : i + per_page] for i in range(0, len(items), per_page)]


def _page_parts(parts: tuple[str, ...], page: int, pages: int) -> tuple[str, ...]:
    return parts if pages == 1 else (*parts, str(page + 1))


def _page_caption(caption: str, page: int, pages: int) -> str:
    return caption if pages == 1 else f"{caption} Page {page + 1} of {pages}."


def _grid(lines: int, cols: int, height: float, shown: int, **kwargs) -> tuple[plt.Figure, list]:
    """A double-column figure of `lines` x `cols` panels, `height` inches tall, the panels after
    the first `shown` hidden; the shown panels in reading order."""
    fig, axes = plt.subplots(
        lines, cols, figsize=(DOUBLE_COLUMN_IN, height), squeeze=False, **kwargs
    )
    for ax in axes.flat[shown:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:shown])


# --- figures --------------------------------------------------------------------------------


def _panels(rows: list[Row]) -> list[tuple[list[Row], str]]:
    """All rows, then, when some lie far below, the rows whose ACC is within 10 points of the
    best non-oracle's (role other than `oracle`)."""
    contenders = [row for row in rows if row.role != "oracle"] or rows
    best = max(row.runs["acc"].mean() for row in contenders)
    close = [row for row in rows if row.runs["acc"].mean() >= best - 10]
    panels = [(rows, "all strategies")]
    if len(close) < len(rows):
        panels.append((close, "ACC within 10 points of the best non-oracle"))
    return panels


def _zoomed(rows: list[Row]) -> tuple[plt.Figure, list[tuple[plt.Axes, list[Row], str]], Key]:
    """A full-width figure with a panel per entry of `_panels` (each axis with its rows and
    title) and room below for the rows' legend (`_rows_key`)."""
    panels = _panels(rows)
    key = _rows_key(rows)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(DOUBLE_COLUMN_IN, PANEL_IN + key.height), squeeze=False
    )
    return (
        fig,
        [(ax, shown, title) for ax, (shown, title) in zip(axes[0], panels, strict=True)],
        key,
    )


def acc_bwt(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """ACC against BWT, a marker per row, with a zoom on the leading rows (`_panels`)."""
    rows = rows_of(runs)
    fig, panels, key = _zoomed(rows)
    for ax, shown, title in panels:
        for row in shown:
            _point(ax, row, row.runs["bwt"], row.runs["acc"], spread, (BWT_LIMITS, ACCURACY_LIMITS))
        ax.set_title(title)
        ax.set_xlabel("BWT (points; 0 = no forgetting)")
        ax.set_ylabel("ACC (%)")
    _rows_legend(fig, rows, key, lines=False)
    _tidy(fig)
    caption = _caption("ACC against BWT", rows, spread, "error bars")
    return [Drawn((benchmark, "acc-bwt"), f"{caption} Up and right is better.", fig)]


def mean_accuracy(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """Mean accuracy over the tasks learned so far, after each task: mean_{j<=t} R[t][j]; with a
    zoom on the leading rows (`_panels`)."""
    rows = rows_of(runs)
    fig, panels, key = _zoomed(rows)
    for ax, shown, title in panels:
        for row in shown:
            per_seed = np.stack(
                [[np.mean(m[t, : t + 1]) for t in range(len(m))] for m in row.runs["matrix"]]
            )
            x = np.arange(1, per_seed.shape[1] + 1)
            _band(ax, x, per_seed, spread, ACCURACY_LIMITS, row.style, row.label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("tasks learned")
        ax.set_ylabel("mean accuracy on them (%)")
        ax.set_title(title)
    _rows_legend(fig, rows, key, lines=True)
    _tidy(fig)
    caption = _caption(
        "Mean accuracy over the tasks learned so far, after each task",
        rows,
        spread,
        "band",
        ", cut at 0 and 100 %",
    )
    return [Drawn((benchmark, "mean-accuracy"), caption, fig)]


PER_TASK_COLUMNS = 3  # panels per line of the per-task accuracy figure
PER_TASK_PANEL_IN = 1.45  # height of one of its panels, tick labels included


def per_task_accuracy(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """A panel per row, in it a line per task j: R[t][j] for t >= j against t (tasks numbered
    from 1), with its band; one accuracy scale on every page, pages as tall as
    `PAGE_HEIGHT_IN` allows."""
    rows = rows_of(runs)
    n_tasks = len(rows[0].runs["matrix"].iloc[0])
    colors = sns.color_palette("viridis", n_tasks)
    styles = [RowStyle(color, "o") for color in colors]
    key = _key([f"task {j + 1}" for j in range(n_tasks)], DOUBLE_COLUMN_IN)
    title_size = _points(mpl.rcParams["axes.titlesize"])
    panel_width = DOUBLE_COLUMN_IN / PER_TASK_COLUMNS - 0.45  # less the y tick labels
    titles = [_fit(row.label, panel_width, title_size) for row in rows]
    line_in = PER_TASK_PANEL_IN + 1.3 * title_size / 72 * max(t.count("\n") + 1 for t in titles)
    fixed = key.height + 0.3  # the legend and the x axis labels
    lines_per_page = max(1, int((PAGE_HEIGHT_IN - fixed) // line_in))
    pages = _pages(list(zip(rows, titles, strict=True)), PER_TASK_COLUMNS * lines_per_page)
    drawn, panels = [], []
    caption = _caption(
        "Accuracy on each task j after training task t, for t >= j: a panel per row, a line per "
        "task",
        rows,
        spread,
        "bands",
        ", cut at 0 and 100 %",
    )
    for page, members in enumerate(pages):
        lines = math.ceil(len(members) / PER_TASK_COLUMNS)
        fig, axes = _grid(
            lines, PER_TASK_COLUMNS, lines * line_in + fixed, len(members), sharey=True
        )
        for n, (ax, (row, title)) in enumerate(zip(axes, members, strict=True)):
            matrices = np.stack(list(row.runs["matrix"]))
            for j in range(n_tasks):
                x = np.arange(j + 1, n_tasks + 1)
                _band(ax, x, matrices[:, j:, j], spread, ACCURACY_LIMITS, styles[j], row.label, 2)
            ax.set_title(title)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0.5, n_tasks + 0.5)
            if n % PER_TASK_COLUMNS == 0:
                ax.set_ylabel("accuracy (%)")
            if n + PER_TASK_COLUMNS >= len(members):  # no panel below
                ax.set_xlabel("after training task")
        handles = [
            Line2D([], [], color=s.color, marker="o", ms=3, label=t)
            for s, t in zip(styles, key.texts, strict=True)
        ]
        _legend_below(fig, handles, key)
        panels += axes
        parts = _page_parts((benchmark, "per-task-accuracy"), page, len(pages))
        drawn.append(Drawn(parts, _page_caption(caption, page, len(pages)), fig))
    low = min(ax.get_ylim()[0] for ax in panels)
    high = max(ax.get_ylim()[1] for ax in panels)
    for d in drawn:
        d.figure.axes[0].set_ylim(low, high)  # shared by every panel of the page
        _tidy(d.figure)
    return drawn


def _heatmap(ax: plt.Axes, matrix: np.ndarray, shown: np.ndarray, norm: plt.Normalize) -> None:
    """The `shown` cells of `matrix` (row t from the top, column j), each with its value, dark
    text on light cells and white on dark ones; axes numbered from 1."""
    n = len(matrix)
    cmap = plt.get_cmap("viridis")
    ax.pcolormesh(np.ma.masked_where(~shown, matrix), norm=norm, cmap=cmap)
    for t, j in zip(*np.nonzero(shown), strict=True):
        light = sns.utils.relative_luminance(cmap(norm(matrix[t, j]))) > 0.408
        ax.text(
            j + 0.5,
            t + 0.5,
            f"{matrix[t, j]:.0f}",
            ha="center",
            va="center",
            fontsize=7,
            color=".15" if light else "w",
            in_layout=False,  # inside the cells: the layout need not measure it
        )
    numbers = [str(k + 1) for k in range(n)]
    ax.set_xticks(np.arange(n) + 0.5, numbers)
    ax.set_yticks(np.arange(n) + 0.5, numbers)
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.tick_params(length=0, pad=1)


def accuracy_matrices(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """R[t][j] per row (row t: after training task t; column j: task evaluated), values in the
    cells, one colour scale spanning the smallest to the largest value shown."""
    del spread  # the cells are means; no spread is drawn
    rows = rows_of(runs)
    means = [np.mean(np.stack(list(row.runs["matrix"])), axis=0) for row in rows]
    n_tasks = len(means[0])
    lower = np.tril(np.ones((n_tasks, n_tasks), dtype=bool))
    shown = np.concatenate([m[lower] for m in means])
    norm = plt.Normalize(math.floor(shown.min()), math.ceil(shown.max()))
    cells_in = n_tasks * CELL_IN
    cols = max(1, min(len(rows), int((DOUBLE_COLUMN_IN - 0.7) // (cells_in + 0.35))))
    title_size = _points(mpl.rcParams["axes.titlesize"])
    titles = [_fit(row.label, cells_in + 0.3, title_size) for row in rows]
    title_in = 1.3 * title_size / 72 * max(t.count("\n") + 1 for t in titles)
    line_in = cells_in + 0.3 + title_in  # the cells, tick labels and title
    rows_per_page = max(1, int((PAGE_HEIGHT_IN - 0.5) // line_in))
    pages = _pages(list(zip(rows, titles, means, strict=True)), cols * rows_per_page)
    caption = (
        f"Accuracy matrices ({_over_seeds(rows)}): row t after training task t, column j the "
        "task evaluated."
    )
    drawn = []
    for page, members in enumerate(pages):
        lines = math.ceil(len(members) / cols)
        fig, axes = _grid(lines, cols, lines * line_in + 0.5, len(members))
        for ax, (row, title, matrix) in zip(axes, members, strict=True):
            _heatmap(ax, matrix, lower, norm)
            ax.collections[0].set_gid(row.label)
            ax.set_title(title)
        fig.supxlabel("task evaluated")
        fig.supylabel("after training task")
        fig.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap="viridis"),
            ax=fig.axes,
            shrink=min(1.0, 2.0 / lines),
            label="accuracy (%)",
        )
        _tidy(fig)
        parts = _page_parts((benchmark, "accuracy-matrices"), page, len(pages))
        drawn.append(Drawn(parts, _page_caption(caption, page, len(pages)), fig))
    return drawn


COSTS = [
    ("seconds", "train + eval time (s)", 1.0),
    ("trainable_params", "trainable parameters, last task (k)", 1e-3),
    ("kept_bytes", "memory kept between tasks (MB)", 1e-6),
]
COST_LINE_IN = 0.16  # room for one line of a row label on the cost figure's shared axis


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


def _cost_values(row: Row, key: str, scale: float, zero: float) -> pd.Series:
    """A row's cost `key` per seed, times `scale`; a row that keeps nothing at `zero`, where a
    log axis draws 0 (error bars stop there too)."""
    x = row.runs[key] * scale
    return x if x.mean() > 0 else pd.Series([zero] * len(x))


def cost(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """Wall time, trainable parameters of the last task and memory kept, per row, on log axes."""
    rows = rows_of(runs)
    size = _points(mpl.rcParams["ytick.labelsize"])
    labels = [_fit(row.label, TICK_LABEL_MAX_IN, size) for row in rows]
    pitch = COST_LINE_IN * max(label.count("\n") + 1 for label in labels)
    height = 1.1 + pitch * len(rows)  # the suptitle, x tick labels and x labels, the rows
    fig, axes = plt.subplots(1, len(COSTS), figsize=(DOUBLE_COLUMN_IN, height), sharey=True)
    for ax, (key, title, scale) in zip(axes, COSTS, strict=True):
        means = np.array([row.runs[key].mean() * scale for row in rows])
        zero = _zero_at(means)
        for y, row in enumerate(rows):
            x = _cost_values(row, key, scale, zero)
            _point(ax, row, x, pd.Series([y]), spread, ((zero, math.inf), NO_LIMITS), size=3.5)
        _log_x(ax, means)
        ax.set_xlabel(title)
    axes[0].set_yticks(range(len(rows)), labels)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)  # shared: the first row at the top
    fig.suptitle(f"{figure_text(benchmark)}: cost per row ({_over_seeds(rows)}, log scale)")
    _tidy(fig)
    caption = _caption(
        "Cost on log axes: wall time, trainable parameters in the last task, memory kept between "
        "tasks, 0 where a row keeps nothing",
        rows,
        spread,
        "error bars",
    )
    return [Drawn((benchmark, "cost"), caption, fig)]


def accuracy_vs_cost(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """ACC against the memory kept and against wall time (log axes)."""
    rows = rows_of(runs)
    key = _rows_key(rows)
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE_COLUMN_IN, PANEL_IN + key.height))
    for ax, (name, title, scale) in zip(axes, (COSTS[2], COSTS[0]), strict=True):
        means = np.array([row.runs[name].mean() * scale for row in rows])
        zero = _zero_at(means)
        for row in rows:
            x = _cost_values(row, name, scale, zero)
            _point(ax, row, x, row.runs["acc"], spread, ((zero, math.inf), ACCURACY_LIMITS))
        _log_x(ax, means)
        ax.set_xlabel(title)
        ax.set_ylabel("ACC (%)")
    axes[0].set_title("accuracy against memory")
    axes[1].set_title("accuracy against time")
    _rows_legend(fig, rows, key, lines=False)
    _tidy(fig)
    caption = _caption(
        "ACC against memory kept between tasks and against wall time, log axes, 0 where a row "
        "keeps nothing",
        rows,
        spread,
        "error bars",
    )
    return [Drawn((benchmark, "accuracy-vs-cost"), caption, fig)]


SUBSPACE_COLUMNS = 3  # layer panels per line
SUBSPACE_LINE_IN = 1.9  # one line of layer panels, axis labels included


def subspaces(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """Per subspace quantity the runs report (`TaskReport.subspaces`: the kept basis of the
    projection family, the null-space rank of the null-space family, ...), per layer and task, one
    line per row that records it; a page holds at most what fits `PAGE_HEIGHT_IN`."""
    rows = rows_of(runs)
    drawn = []
    for kind in _kinds(rows):
        recording = [row for row in rows if all(kind in s for s in row.runs["subspaces"])]
        layers = list(dict.fromkeys(layer for row in recording for layer in _layers(row, kind)))
        cols = min(SUBSPACE_COLUMNS, len(layers))
        key = _rows_key(recording)
        lines_per_page = max(1, int((PAGE_HEIGHT_IN - key.height) // SUBSPACE_LINE_IN))
        pages = _pages(layers, cols * lines_per_page)
        title = f"{kind[:1].upper()}{kind[1:]} per layer, as each task reports it"
        caption = _caption(title, recording, spread, "band", ", cut at 0")
        for page, shown in enumerate(pages):
            fig = _subspace_page(recording, kind, shown, cols, key, spread)
            parts = _page_parts((benchmark, kind.replace(" ", "-")), page, len(pages))
            drawn.append(Drawn(parts, _page_caption(caption, page, len(pages)), fig))
    return drawn


def _subspace_page(
    rows: Sequence[Row], kind: str, layers: Sequence[str], cols: int, key: Key, spread: str
) -> plt.Figure:
    lines = math.ceil(len(layers) / cols)
    fig, axes = _grid(lines, cols, SUBSPACE_LINE_IN * lines + key.height, len(layers))
    for n, (ax, layer) in enumerate(zip(axes, layers, strict=True)):
        for row in rows:
            n_tasks = len(row.runs["matrix"].iloc[0])
            per_seed = np.array(
                [s[kind].get(layer, [math.nan] * n_tasks) for s in row.runs["subspaces"]],
                dtype=float,
            )
            if not np.isnan(per_seed).all():
                x = np.arange(1, n_tasks + 1)
                _band(ax, x, per_seed, spread, SIZE_LIMITS, row.style, row.label)
        ax.set_title(f"layer {figure_text(layer)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("task")
        if n % cols == 0:
            ax.set_ylabel(f"{kind} (directions)")
    _rows_legend(fig, rows, key, lines=True)
    _tidy(fig)
    return fig


def _kinds(rows: Sequence[Row]) -> list[str]:
    """The subspace quantities of the rows, in the order they first appear."""
    return list(dict.fromkeys(kind for row in rows for s in row.runs["subspaces"] for kind in s))


def _layers(row: Row, kind: str) -> list[str]:
    return list(dict.fromkeys(layer for s in row.runs["subspaces"] for layer in s[kind]))


def sensitivity(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """ACC and BWT against a swept parameter (one column wide), for every strategy whose runs
    sweep exactly one numeric parameter, strategies in row order."""
    drawn = []
    for strategy in dict.fromkeys(runs.sort_values("row")["strategy"]):
        mine = runs[runs["strategy"] == strategy]
        swept = {key for varied in mine["varied"] for key in varied}
        if len(swept) != 1:
            continue
        (parameter,) = swept
        values = mine["varied"].map(lambda v, p=parameter: v[p])
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            continue
        short = parameter.split(".", 1)[-1]
        name, swept_name = figure_text(strategy), figure_text(short)
        groups = list(mine.assign(value=values.astype(float)).groupby("value"))
        x = np.array([value for value, _ in groups])
        fig, axes = plt.subplots(2, 1, figsize=(SINGLE_COLUMN_IN, 3.2), sharex=True)
        for ax, metric, title, limits in zip(
            axes,
            ("acc", "bwt"),
            ("ACC (%)", "BWT (points)"),
            (ACCURACY_LIMITS, BWT_LIMITS),
            strict=True,
        ):
            means = np.array([group[metric].mean() for _, group in groups])
            bounds = np.array([interval(list(group[metric]), spread) for _, group in groups])
            low, high = np.clip(bounds, *limits).T
            errors = None if np.isnan(low).all() else [means - low, high - means]
            bars = ax.errorbar(x, means, yerr=errors, marker="o", ms=3, capsize=1.5)
            bars.lines[0].set_gid(name)
            if x.min() > 0 and x.max() / x.min() >= 100:
                ax.set_xscale("log")
            ax.set_ylabel(title)
        axes[0].set_title(f"{name}: sensitivity to {swept_name}")
        axes[1].set_xlabel(swept_name)
        _tidy(fig)
        rows = rows_of(mine)
        caption = _caption(f"Sensitivity of {strategy} to {short}", rows, spread, "error bars")
        drawn.append(Drawn((benchmark, strategy, short, "sensitivity"), caption, fig))
    return drawn


def _warped(iterations: np.ndarray, ends: Sequence[int], reference: np.ndarray) -> np.ndarray:
    """`iterations` of a run whose tasks ended at `ends`, stretched task by task onto the task
    ends `reference` (the identity when they agree)."""
    return np.interp(iterations, [0, *ends], [0, *reference])


def _past_mean(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, mean accuracy over the tasks whose training had ended before each
    evaluation) from the first evaluation after task 1's end."""
    table = pd.DataFrame({"it": curve.iteration, "task": curve.task, "acc": curve.accuracy})
    ended = np.searchsorted(np.asarray(curve.task_ends), table["it"], side="left")
    past = table[table["task"] <= ended]
    mean = past.groupby("it")["acc"].mean()
    return mean.index.to_numpy(), mean.to_numpy()


def _curves_on_grid(
    runs: pd.DataFrame, reference: np.ndarray, series: Callable[[Curve], tuple]
) -> tuple[np.ndarray, np.ndarray]:
    """The runs' `series` on the union of their (stretched) iterations: seeds x points, NaN
    outside the iterations where a run has the series."""
    warped = [
        (_warped(x, c.task_ends, reference), y) for c in runs["curve"] for x, y in [series(c)]
    ]
    grid = np.unique(np.concatenate([x for x, _ in warped]))
    values = [
        np.where((grid >= x[0]) & (grid <= x[-1]), np.interp(grid, x, y), np.nan) for x, y in warped
    ]
    return grid, np.stack(values)


def stability_gap(runs: pd.DataFrame, benchmark: str, spread: str) -> list[Drawn]:
    """Continual evaluation (`protocol.eval_every`) of the rows whose every run has it: the
    accuracy on task 1 and the mean accuracy over the past tasks against training iterations
    across the sequence, a line per row with its band, task boundaries dashed (as De Lange et al.,
    ICLR 2023, draw it)."""
    rows = [row for row in rows_of(runs) if row.runs["curve"].notna().all()]
    if not rows:
        return []
    curves = [curve for row in rows for curve in row.runs["curve"]]
    all_ends = np.array([curve.task_ends for curve in curves], dtype=float)
    reference = np.median(all_ends, axis=0)
    key = _rows_key(rows)
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(DOUBLE_COLUMN_IN, PANEL_IN + key.height),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    panels = [
        ("accuracy on task 1 (%)", lambda c: c.series(1)),
        ("mean accuracy on past tasks (%)", _past_mean),
    ]
    for ax, (title, series) in zip(axes[0], panels, strict=True):
        for row in rows:
            x, per_seed = _curves_on_grid(row.runs, reference, series)
            _band(ax, x, per_seed, spread, ACCURACY_LIMITS, row.style, row.label, size=0)
        for end in reference[:-1]:
            ax.axvline(end, color="0.6", lw=0.6, ls="--", zorder=0)
        ax.set_xlabel("training iterations")
        ax.set_title(title)
    axes[0][0].set_ylabel("accuracy (%)")
    _rows_legend(fig, rows, key, lines=True)
    _tidy(fig)
    every = sorted({int(k) for row in rows for k in row.runs["eval_every"]})
    stretched = (all_ends != reference).any()
    what = (
        "Accuracy on task 1 and mean accuracy on the tasks trained before, against training "
        f"iterations, evaluated every {', '.join(map(str, every))} iterations and when each "
        "task ends; dashed: task boundaries"
        + (
            ", runs whose tasks ended elsewhere stretched task by task onto the median ends"
            if stretched
            else ""
        )
    )
    caption = _caption(what, rows, spread, "band", ", cut at 0 and 100 %")
    return [Drawn((benchmark, "stability-gap"), caption, fig)]


#: Every figure a report can draw, by name, in the order a report shows them.
FIGURES: dict[str, Callable[[pd.DataFrame, str, str], list[Drawn]]] = {
    "acc-bwt": acc_bwt,
    "mean-accuracy": mean_accuracy,
    "per-task-accuracy": per_task_accuracy,
    "accuracy-matrices": accuracy_matrices,
    "cost": cost,
    "accuracy-vs-cost": accuracy_vs_cost,
    "subspaces": subspaces,
    "sensitivity": sensitivity,
    "stability-gap": stability_gap,
}
