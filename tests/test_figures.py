"""Figures: drawn at paper widths with readable fonts, every series keyed, values as computed,
spreads as asked, and no text clipped or overprinted however long the labels or many the rows."""

import math
import re
from itertools import combinations
from pathlib import Path
from unittest.mock import patch

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image

from clbench.report.collect import collect
from clbench.report.figures import (
    FIGURES,
    acc_bwt,
    accuracy_matrices,
    cost,
    mean_accuracy,
    per_task_accuracy,
    rows_of,
    save,
    sensitivity,
    subspaces,
)
from clbench.report.layout import Selection, lay_out
from clbench.report.stats import SPREADS, interval
from clbench.report.style import (
    DOUBLE_COLUMN_IN,
    MIN_FONT_PT,
    PAGE_HEIGHT_IN,
    SINGLE_COLUMN_IN,
    apply_style,
    row_styles,
)
from results import curve_record, write_result

NAIVE = {0: [[90, 0, 0], [60, 80, 0], [50, 60, 100]], 1: [[80, 0, 0], [70, 90, 0], [30, 70, 90]]}
GPM = {0: [[90, 0, 0], [90, 80, 0], [80, 80, 70]], 1: [[100, 0, 0], [100, 90, 0], [100, 90, 80]]}
# Kept basis sizes per layer after each task, per seed (GPM records them after every task).
BASIS = {0: {"fc1": [10, 20, 30], "fc2": [5, 9, 12]}, 1: {"fc1": [12, 22, 34], "fc2": [5, 8, 12]}}
# Null-space ranks of the tasks after the first (nothing on task 0).
NULL = {0: {"fc1": [None, 50, 40]}, 1: {"fc1": [None, 46, 38]}}


#: The order rows of these tests' results are laid out in (`--strategies`), and their roles.
ZOO = ["naive", "joint", "ewc", "si", "mas", "lwf", "replay", "agem", "gem", "gpm", "sgp"]
ZOO += ["trgp", "dfgp", "gpcns", "ness", "adam-nscl", "frozen", "from-scratch"]
ZOO += ["hybrid-magnitude", "hybrid-drift"]
ROLES = {"joint": "oracle", "naive": "bound"}


def laid_out(folder: Path) -> pd.DataFrame:
    """The runs of `folder` (one benchmark) as the report lays them out for figures, strategies
    in the order of `ZOO` (then others by name), with the roles of `ROLES`."""
    runs = collect(folder).runs
    present = set(runs["strategy"])
    order = [s for s in ZOO if s in present] + sorted(present - set(ZOO))
    runs = lay_out(runs, Selection(strategies=order))[0]
    return runs.assign(role=[ROLES.get(s, "method") for s in runs["strategy"]])


def _drawn_texts(figure: Figure) -> list[tuple[Text, object]]:
    """Every non-empty text a draw of `figure` puts on its canvas, with its box (pixels)."""
    drawn = []
    draw = Text.draw

    def record(text: Text, renderer) -> None:
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text, text.get_window_extent(renderer)))

    with patch.object(Text, "draw", record):
        figure.canvas.draw()
    return drawn


def _is_cell(text: Text) -> bool:
    """A number inside a heatmap cell."""
    ax = text.axes
    return (
        ax is not None and text in ax.texts and any(isinstance(c, QuadMesh) for c in ax.collections)
    )


def assert_legible(figure: Figure, name: str, slack: float = 0.5) -> None:
    """Every text `figure` draws (titles, axis and tick labels, legend entries, suptitles,
    annotations) lies inside the canvas, and no two of them overlap by more than `slack`
    pixels either way; heatmap cell numbers are checked against the canvas only."""
    canvas = figure.bbox
    texts = _drawn_texts(figure)
    assert texts, f"{name}: no text drawn"
    for text, box in texts:
        inside = (
            box.x0 >= canvas.x0 - slack
            and box.y0 >= canvas.y0 - slack
            and box.x1 <= canvas.x1 + slack
            and box.y1 <= canvas.y1 + slack
        )
        assert inside, f"{name}: {text.get_text()!r} at {box.bounds} leaves the canvas"
    boxes = [(text, box) for text, box in texts if not _is_cell(text)]
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        wide = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        high = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert wide <= slack or high <= slack, (
            f"{name}: {a.get_text()!r} and {b.get_text()!r} overlap"
        )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _task_extras(quantity: str, sizes: dict[str, list]) -> list[dict]:
    """Task records' `subspaces` with one quantity's per-layer sizes (None: no value yet)."""
    n = len(next(iter(sizes.values())))
    return [
        {"subspaces": {quantity: {k: v[t] for k, v in sizes.items() if v[t] is not None}}}
        for t in range(n)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """naive, joint, gpm (with basis sizes), adam-nscl (null-space ranks) and a two-variant grid
    of ness, two seeds each, on a three-task benchmark; naive and gpm evaluated continually."""
    apply_style()
    folder = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        naive_curve = curve_record(NAIVE[seed])
        write_result(
            folder,
            "toy",
            "naive",
            seed,
            NAIVE[seed],
            seconds=10 + seed,
            kept=0,
            continual=naive_curve,
        )
        write_result(folder, "toy", "joint", seed, GPM[seed], seconds=30, kept=0)
        write_result(
            folder,
            "toy",
            "gpm",
            seed,
            GPM[seed],
            seconds=20,
            kept=4000 + 2000 * seed,
            task_extras=_task_extras("kept basis size", BASIS[seed]),
            continual=curve_record(GPM[seed]),
        )
        write_result(
            folder,
            "toy",
            "adam-nscl",
            seed,
            GPM[seed],
            seconds=25,
            kept=10**6,
            task_extras=_task_extras("null-space rank", NULL[seed]),
        )
        for eps in (0.01, 0.1):
            write_result(
                folder,
                "toy",
                "ness",
                seed,
                NAIVE[seed],
                seconds=15,
                kept=2 * 10**5,
                strategy_params={"eps1": eps},
            )
    return laid_out(folder)


def _all(runs: pd.DataFrame, benchmark: str, spread: str = "std") -> list:
    return [d for draw in FIGURES.values() for d in draw(runs, benchmark, spread)]


@pytest.fixture(scope="module")
def drawn(runs):
    figures = _all(runs, "toy")
    for d in figures:
        d.figure.canvas.draw()  # lay out, so that texts and ticks are final
    return figures


def test_the_report_draws_every_kind_of_figure(drawn):
    assert list(FIGURES) == [
        "acc-bwt",
        "mean-accuracy",
        "per-task-accuracy",
        "accuracy-matrices",
        "cost",
        "accuracy-vs-cost",
        "subspaces",
        "sensitivity",
        "stability-gap",
    ]
    assert [d.stem for d in drawn] == [
        "toy-acc-bwt",
        "toy-mean-accuracy",
        "toy-per-task-accuracy",
        "toy-accuracy-matrices",
        "toy-cost",
        "toy-accuracy-vs-cost",
        "toy-kept-basis-size",
        "toy-null-space-rank",
        "toy-ness-eps1-sensitivity",
        "toy-stability-gap",
    ]


@pytest.mark.slow
def test_files_are_written_at_a_paper_width(drawn, tmp_path):
    for d in drawn:
        width, height = d.figure.get_size_inches()
        assert width in (SINGLE_COLUMN_IN, DOUBLE_COLUMN_IN), d.stem
        assert height <= PAGE_HEIGHT_IN, d.stem
        png, pdf = save(d, tmp_path)
        box = re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", pdf.read_bytes())
        assert float(box.group(1)) == pytest.approx(72 * width, abs=0.5), d.stem
        assert float(box.group(2)) == pytest.approx(72 * height, abs=0.5), d.stem
        image = Image.open(png)
        assert image.width == round(300 * width), d.stem
        assert np.asarray(image.convert("L"), dtype=float).std() > 10, f"{d.stem} looks blank"


def test_no_text_is_smaller_than_the_minimum_once_placed(drawn):
    for d in drawn:
        texts = [t for t in d.figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts
        small = {t.get_text(): t.get_fontsize() for t in texts if t.get_fontsize() < MIN_FONT_PT}
        assert not small, f"{d.stem}: {small}"


def _plain(text: str) -> str:
    """`text` without white space: a label wrapped onto several lines reads as written."""
    return "".join(text.split())


def _keys(figure) -> set[str]:
    """Every name a reader can match a series to: legend entries, tick labels, titles."""
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
    keys = {t.get_text() for legend in legends for t in legend.get_texts()}
    for ax in figure.axes:
        keys |= {t.get_text() for t in ax.get_yticklabels()}
        keys.add(ax.get_title())
    keys.add(figure._suptitle.get_text() if figure._suptitle else "")
    return {_plain(key) for key in keys}


def _assert_keyed(drawn: list) -> None:
    for d in drawn:
        keys = _keys(d.figure)
        panels = [ax for ax in d.figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        for ax in panels:
            named = {a.get_gid() for a in ax.findobj() if a.get_gid()}
            assert named, f"{d.stem}: a panel with no series"
            unkeyed = {gid for gid in named if not any(_plain(gid) in key for key in keys)}
            assert not unkeyed, f"{d.stem}: {unkeyed} drawn but named nowhere"


def test_every_series_is_named_and_every_panel_holds_one(drawn):
    _assert_keyed(drawn)


def test_rows_keep_distinct_colours_and_markers_across_figures(runs, drawn):
    rows = rows_of(runs)
    assert [r.label for r in rows] == [
        "naive",
        "joint",
        "gpm",
        "ness (eps1=0.01)",
        "ness (eps1=0.1)",
        "adam-nscl",
    ]
    colours = [r.style.color for r in rows]
    assert len(set(colours)) == len(colours)
    ness = [r.style.marker for r in rows if r.label.startswith("ness")]
    assert ness[0] != ness[1]
    styles = {r.label: r.style for r in rows}
    for d in drawn:
        if d.stem in ("toy-ness-eps1-sensitivity", "toy-per-task-accuracy"):
            continue  # one series per strategy, one colour per task
        for line in d.figure.findobj(Line2D):
            if line.get_gid() in styles:
                style = styles[line.get_gid()]
                assert to_rgb(line.get_color()) == pytest.approx(style.color), d.stem
                assert line.get_marker() == style.marker, d.stem
    many = row_styles(list(range(40)))
    assert len({s.color for s in many.values()}) == 40
    markers = [s.marker for s in many.values()]
    assert all(a != b for a, b in zip(markers, markers[1:], strict=False))


def test_rows_are_drawn_in_the_order_and_under_the_labels_given(runs):
    """`row` decides the order and `label` the name, whatever the strategies are called."""
    flipped = runs.assign(
        row=len(set(runs["row"])) - 1 - runs["row"],
        label=runs["label"].str.upper() + " $x$",
    )
    rows = rows_of(flipped)
    assert [r.label for r in rows] == [
        r"ADAM-NSCL \$x\$",
        r"NESS (EPS1=0.1) \$x\$",
        r"NESS (EPS1=0.01) \$x\$",
        r"GPM \$x\$",
        r"JOINT \$x\$",
        r"NAIVE \$x\$",
    ]
    (drawn,) = cost(flipped, "toy", "std")
    drawn.figure.canvas.draw()
    ticks = [t.get_text() for t in drawn.figure.axes[0].get_yticklabels()]
    assert [_plain(t) for t in ticks] == [_plain(r.label) for r in rows]


def test_accuracy_matrix_cells_hold_the_seed_means_on_a_fitted_scale(runs):
    (figure,) = [d.figure for d in accuracy_matrices(runs, "toy", "std")]
    ax = next(a for a in figure.axes if a.get_title() == "naive")
    mean = (np.array(NAIVE[0]) + np.array(NAIVE[1])) / 2
    lower = [mean[t, j] for t in range(3) for j in range(t + 1)]
    assert [t.get_text() for t in ax.texts] == [f"{v:.0f}" for v in lower]
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    shown = [
        v
        for matrices in (NAIVE, GPM)
        for m in [(np.array(matrices[0]) + np.array(matrices[1])) / 2]
        for t in range(3)
        for v in m[t, : t + 1]
    ]
    assert mesh.norm.vmin == math.floor(min(shown)) and mesh.norm.vmax == math.ceil(max(shown))


def _band(ax, gid: str, n: int = 0) -> np.ndarray:
    """The vertices of the `n`-th band named `gid` in `ax`."""
    bands = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_gid() == gid]
    return bands[n].get_paths()[0].vertices


def test_mean_accuracy_is_the_mean_over_the_tasks_learned_with_a_seed_band(runs):
    (drawn,) = mean_accuracy(runs, "toy", "std")
    ax = drawn.figure.axes[0]
    line = next(a for a in ax.get_lines() if a.get_gid() == "naive")
    # seed 0: 90, (60+80)/2, (50+60+100)/3; seed 1: 80, (70+90)/2, (30+70+90)/3
    per_seed = np.array([[90, 70, 70], [80, 80, 190 / 3]])
    np.testing.assert_allclose(line.get_ydata(), per_seed.mean(axis=0))
    vertices = _band(ax, "naive")
    at_two = vertices[np.isclose(vertices[:, 0], 2), 1]
    std = np.std([70, 80], ddof=1)
    assert at_two.min() == pytest.approx(75 - std) and at_two.max() == pytest.approx(75 + std)


@pytest.mark.parametrize("spread", list(SPREADS))
def test_bars_bands_and_captions_follow_the_spread_asked(runs, spread):
    """Error bars and bands are `stats.interval` of the seeds (asymmetric for the bootstrap),
    cut at 0 and 100 %, and the caption names that spread and the seeds."""
    (scatter,) = acc_bwt(runs, "toy", spread)
    naive = runs[runs["label"] == "naive"]
    bars = next(
        c
        for c in scatter.figure.axes[0].collections
        if c.get_gid() is None
        and len(c.get_segments()) == 1
        and np.isclose(c.get_segments()[0][0, 0], naive["bwt"].mean())
    )
    ys = bars.get_segments()[0][:, 1]
    expected = np.clip(interval(list(naive["acc"]), spread), 0, 100)
    assert (ys.min(), ys.max()) == pytest.approx(expected)
    assert f"mean over 2 seeds; error bars: {SPREADS[spread]}" in scatter.caption
    (curve,) = mean_accuracy(runs, "toy", spread)
    vertices = _band(curve.figure.axes[0], "naive")
    at_two = vertices[np.isclose(vertices[:, 0], 2), 1]
    assert (at_two.min(), at_two.max()) == pytest.approx(
        np.clip(interval([70, 80], spread), 0, 100)
    )
    assert SPREADS[spread] in curve.caption


def test_one_seed_draws_no_spread_and_promises_none(tmp_path):
    apply_style()
    for strategy in ("naive", "ewc"):
        write_result(tmp_path, "toy", strategy, 0, NAIVE[0])
    runs = laid_out(tmp_path)
    for d in _all(runs, "toy", "ci"):
        assert not [c for c in d.figure.findobj(PolyCollection) if c.get_gid()], d.stem
        assert "seeds" not in d.caption and SPREADS["ci"] not in d.caption, d.stem
        assert "1 seed" not in d.caption, d.stem
    (scatter,) = acc_bwt(runs, "toy", "ci")
    assert "(one seed)" in scatter.caption
    assert not [c for c in scatter.figure.axes[0].collections if len(c.get_segments())]


def test_a_row_with_one_seed_among_more_is_named_in_the_caption(runs, tmp_path):
    apply_style()
    one = runs[(runs["label"] != "naive") | (runs["seed"] == 0)]
    (drawn,) = acc_bwt(one, "toy", "std")
    assert "mean over 1 to 2 seeds" in drawn.caption
    assert "none for a row with one seed" in drawn.caption


def test_the_zoom_leaves_out_oracles_by_role_not_by_name(runs):
    """A row whose role is oracle does not set the best; one named joint but not an oracle
    does."""
    far = runs.copy()
    far.loc[far["label"] == "naive", "acc"] = 0.0
    far.loc[far["label"] == "joint", "acc"] = 99.0
    as_oracle = acc_bwt(far, "toy", "std")[0].figure
    titles = [ax.get_title().replace("\n", " ") for ax in as_oracle.axes]
    assert titles == ["all strategies", "ACC within 10 points of the best non-oracle"]
    zoom = {line.get_gid() for line in as_oracle.axes[1].get_lines() if line.get_gid()}
    assert "joint" in zoom and "gpm" in zoom and "naive" not in zoom
    as_method = acc_bwt(far.assign(role="method"), "toy", "std")[0].figure
    zoom = {line.get_gid() for line in as_method.axes[1].get_lines() if line.get_gid()}
    assert zoom == {"joint"}


def test_per_task_accuracy_follows_each_task_from_when_it_is_learned(runs):
    (drawn,) = per_task_accuracy(runs, "toy", "std")
    panels = [ax for ax in drawn.figure.axes if ax.get_visible()]
    assert [_plain(ax.get_title()) for ax in panels] == [_plain(r.label) for r in rows_of(runs)]
    naive = next(ax for ax in panels if ax.get_title() == "naive")
    lines = [line for line in naive.get_lines() if line.get_gid() == "naive"]
    assert len(lines) == 3
    mean = (np.array(NAIVE[0]) + np.array(NAIVE[1])) / 2
    for j, line in enumerate(lines):
        np.testing.assert_allclose(line.get_xdata(), np.arange(j + 1, 4))  # tasks from 1
        np.testing.assert_allclose(line.get_ydata(), mean[j:, j])
    first = _band(naive, "naive", 0)  # task 1 after task 2: 60 and 70
    at_two = first[np.isclose(first[:, 0], 2), 1]
    assert (at_two.min(), at_two.max()) == pytest.approx(interval([60, 70], "std"))
    assert {ax.get_ylim() for ax in panels} == {panels[0].get_ylim()}
    legend = {t.get_text() for t in drawn.figure.legends[0].get_texts()}
    assert legend == {"task 1", "task 2", "task 3"}


def test_per_task_accuracy_splits_many_rows_into_pages_that_fit(tmp_path):
    apply_style()
    ten = [[80.0 if j <= t else 0.0 for j in range(10)] for t in range(10)]
    for k in range(24):
        write_result(tmp_path, "long", f"plugin-{k:02d}", 0, ten)
    pages = per_task_accuracy(laid_out(tmp_path), "long", "std")
    assert [d.stem for d in pages] == [f"long-per-task-accuracy-{i + 1}" for i in range(len(pages))]
    titles = [ax.get_title() for d in pages for ax in d.figure.axes if ax.get_visible()]
    assert titles == [f"plugin-{k:02d}" for k in range(24)]
    for d in pages:
        assert d.figure.get_size_inches()[1] <= PAGE_HEIGHT_IN


def test_cost_axes_are_logarithmic_and_show_keeping_nothing_as_zero(runs):
    (drawn,) = cost(runs, "toy", "std")
    time_ax, params_ax, memory_ax = drawn.figure.axes
    assert {ax.get_xscale() for ax in (time_ax, params_ax, memory_ax)} == {"log"}
    drawn.figure.canvas.draw()
    labels = [t.get_text() for t in memory_ax.get_xticklabels()]
    assert labels[0] == "0"
    naive = next(a for a in memory_ax.get_lines() if a.get_gid() == "naive")
    gpm = next(a for a in memory_ax.get_lines() if a.get_gid() == "gpm")
    assert naive.get_xdata()[0] == memory_ax.get_xticks()[0] < gpm.get_xdata()[0]
    assert gpm.get_xdata()[0] == pytest.approx(5000 * 1e-6)  # mean of 4000 and 6000 bytes, MB


def test_subspace_figures_plot_the_recorded_sizes_per_layer(runs):
    basis, null = subspaces(runs, "toy", "std")
    assert [ax.get_title() for ax in basis.figure.axes if ax.get_visible()] == [
        "layer fc1",
        "layer fc2",
    ]
    fc1 = next(a for a in basis.figure.axes[0].get_lines() if a.get_gid() == "gpm")
    np.testing.assert_allclose(fc1.get_ydata(), [11, 21, 32])
    ranks = next(a for a in null.figure.axes[0].get_lines() if a.get_gid() == "adam-nscl")
    assert np.isnan(ranks.get_ydata()[0])  # no null space while learning the first task
    np.testing.assert_allclose(ranks.get_ydata()[1:], [48, 39])
    assert {a.get_gid() for a in basis.figure.findobj(Line2D) if a.get_gid()} == {"gpm"}
    assert {a.get_gid() for a in null.figure.findobj(Line2D) if a.get_gid()} == {"adam-nscl"}


def test_every_subspace_quantity_a_strategy_reports_gets_its_figure(tmp_path):
    """Quantities are the strategies' own names (`TaskReport.subspaces`), drawn in the order the
    records first give them."""
    apply_style()
    extras = [
        {"subspaces": {"gradient space rank": {"fc1": 2 + t}, "kept basis size": {"fc1": 5 + t}}}
        for t in range(3)
    ]
    write_result(tmp_path, "toy", "gpcns", 0, GPM[0], task_extras=extras)
    gradient, basis = subspaces(laid_out(tmp_path), "toy", "std")
    assert [gradient.stem, basis.stem] == ["toy-gradient-space-rank", "toy-kept-basis-size"]
    for drawn, expected in ((gradient, [2, 3, 4]), (basis, [5, 6, 7])):
        line = next(a for a in drawn.figure.axes[0].get_lines() if a.get_gid() == "gpcns")
        np.testing.assert_allclose(line.get_ydata(), expected)


def test_many_rows_of_long_matrices_are_split_into_pages_that_fit(tmp_path):
    apply_style()
    ten = [[80.0 if j <= t else 0.0 for j in range(10)] for t in range(10)]
    for k in range(12):
        write_result(tmp_path, "long", f"plugin-{k:02d}", 0, ten)
    pages = accuracy_matrices(laid_out(tmp_path), "long", "std")
    assert len(pages) > 1
    assert [d.stem for d in pages] == [f"long-accuracy-matrices-{i + 1}" for i in range(len(pages))]
    titles = [ax.get_title() for d in pages for ax in d.figure.axes if ax.get_title()]
    assert titles == [f"plugin-{k:02d}" for k in range(12)]
    for d in pages:
        assert d.figure.get_size_inches()[1] <= PAGE_HEIGHT_IN


def test_cost_draws_when_no_row_keeps_anything(tmp_path):
    apply_style()
    for strategy in ("naive", "ewc"):
        write_result(tmp_path, "toy", strategy, 0, NAIVE[0], kept=0)
    (drawn,) = cost(laid_out(tmp_path), "toy", "std")
    memory_ax = drawn.figure.axes[2]
    drawn.figure.canvas.draw()
    assert [t.get_text() for t in memory_ax.get_xticklabels()][0] == "0"
    low, high = memory_ax.get_xlim()
    assert 0 < low < memory_ax.get_xticks()[0] < high


def test_seed_bands_stay_within_the_values_a_quantity_can_take(tmp_path):
    """A rank of 0 or 2 (mean 1, std 1.41) and an accuracy of 100 or 90 (mean 95, std 7.1): the
    bands stop at 0 directions and at 100 %."""
    apply_style()
    full = {0: [[100, 0], [100, 100]], 1: [[90, 0], [90, 90]]}
    for seed, rank in ((0, 0), (1, 2)):
        extras = [{}, {"subspaces": {"null-space rank": {"fc1": rank}}}]
        write_result(tmp_path, "toy", "adam-nscl", seed, full[seed], task_extras=extras)
    runs = laid_out(tmp_path)

    def band_bounds(figure) -> tuple[float, float]:
        band = next(c for c in figure.axes[0].collections if isinstance(c, PolyCollection))
        vertices = band.get_paths()[0].vertices
        return vertices[:, 1].min(), vertices[:, 1].max()

    (null,) = subspaces(runs, "toy", "std")
    low, high = band_bounds(null.figure)
    assert low == 0 and high == pytest.approx(1 + math.sqrt(2))
    (curve,) = mean_accuracy(runs, "toy", "std")
    low, high = band_bounds(curve.figure)
    assert high == 100 and low == pytest.approx(95 - np.std([100, 90], ddof=1))


# --- long labels and many rows --------------------------------------------------------------


def _matrix(rng: np.random.Generator, n: int) -> list[list[float]]:
    learned = rng.uniform(60, 100, n)
    return [
        [
            float(np.clip(learned[j] - rng.uniform(0, 8) * (t - j), 0, 100)) if j <= t else 0.0
            for j in range(n)
        ]
        for t in range(n)
    ]


@pytest.fixture(scope="module")
def long_labels(tmp_path_factory):
    """A sweep over two parameters of one strategy whose labels are 40 characters long, a
    one-parameter sweep with a long name, and a projection strategy with five layers."""
    apply_style()
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    layers = {f"backbone.block{k}.conv": [10.0 * (t + k + 1) for t in range(5)] for k in range(5)}
    for seed in (0, 1, 2):
        naive = _matrix(rng, 5)
        write_result(
            folder, "long-benchmark-name", "naive", seed, naive, continual=curve_record(naive)
        )
        write_result(folder, "long-benchmark-name", "joint", seed, _matrix(rng, 5))
        write_result(
            folder,
            "long-benchmark-name",
            "gpm",
            seed,
            _matrix(rng, 5),
            kept=10**6,
            task_extras=_task_extras("kept basis size", layers),
        )
        for scale in (0.25, 0.75):
            for decay in (0.5, 0.9):
                write_result(
                    folder,
                    "long-benchmark-name",
                    "hybrid-magnitude",
                    seed,
                    _matrix(rng, 5),
                    kept=2 * 10**5,
                    strategy_params={"scale": scale, "decay": decay},
                )
        for threshold in (0.9, 0.99, 0.999):
            write_result(
                folder,
                "long-benchmark-name",
                "a-plugin-with-a-long-name",
                seed,
                _matrix(rng, 5),
                seconds=100,
                strategy_params={"threshold_of_the_projection": threshold},
            )
    runs = laid_out(folder)
    sweep = [label for label in set(runs["label"]) if label.startswith("hybrid-magnitude")]
    assert len(sweep) == 4 and {len(label) for label in sweep} == {40}
    return runs


@pytest.fixture(scope="module")
def many_rows(tmp_path_factory):
    """24 rows (the zoo's strategies, three variants of one, plugins) over ten tasks, with
    per-layer basis sizes."""
    apply_style()
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(1)
    configs = [(s, {}) for s in ZOO if s != "gpcns"]
    configs += [
        ("gpcns", {"base": base, "coefficient": c})
        for base, c in (("gpm", 5.0), ("sgp", 1.5), ("trgp", 4.5))
    ]
    configs += [(f"plugin-{k}", {}) for k in range(24 - len(configs))]
    layers = {f"layer{k}": [20.0 * (t + 1) for t in range(10)] for k in range(3)}
    for seed in (0, 1):
        for strategy, params in configs:
            matrix = _matrix(rng, 10)
            write_result(
                folder,
                "pmnist",
                strategy,
                seed,
                matrix,
                continual=curve_record(matrix),
                seconds=float(rng.uniform(1, 50)),
                trainable=int(rng.integers(1, 10**6)),
                kept=int(rng.choice([0, rng.integers(10**3, 10**8)])),
                strategy_params=params,
                task_extras=_task_extras("kept basis size", layers) if "gp" in strategy else None,
            )
    runs = laid_out(folder)
    assert runs["row"].nunique() == 24
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("case", ["toy", "long_labels", "many_rows"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_no_text_is_clipped_or_overprinted(request, case, name):
    runs = request.getfixturevalue(case if case != "toy" else "runs")
    drawn = FIGURES[name](runs, str(runs["benchmark"].iloc[0]), "ci")
    assert drawn or name == "sensitivity"
    for d in drawn:
        assert d.figure.get_size_inches()[1] <= PAGE_HEIGHT_IN, d.stem
        assert_legible(d.figure, d.stem)
    _assert_keyed(drawn)


def test_the_check_catches_clipped_and_overprinted_text():
    apply_style()
    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_title("a title far too long to fit this narrow figure at all")
    with pytest.raises(AssertionError, match="leaves the canvas"):
        assert_legible(figure, "clipped")
    ax.set_title("short")
    ax.text(0.5, 0.5, "here")
    ax.text(0.5, 0.5, "there")
    with pytest.raises(AssertionError, match="overlap"):
        assert_legible(figure, "overprinted")


def test_legends_take_as_many_columns_as_fit_and_the_figure_grows_with_them(
    runs, long_labels, many_rows
):
    def legend_lines(figure) -> int:
        figure.canvas.draw()
        texts = figure.legends[0].get_texts()
        return len({round(t.get_window_extent().y0) for t in texts})

    short = acc_bwt(many_rows, "pmnist", "std")[0].figure
    assert legend_lines(short) < 24 / 5  # more than 5 entries a line
    toy = acc_bwt(runs, "toy", "std")[0].figure
    assert legend_lines(toy) == 1
    long = acc_bwt(long_labels, "long-benchmark-name", "std")[0].figure
    assert 1 < legend_lines(long) < long_labels["row"].nunique()
    assert toy.get_figheight() < long.get_figheight()


def test_sensitivity_skips_two_parameter_sweeps(long_labels):
    stems = [d.stem for d in sensitivity(long_labels, "long", "std")]
    assert stems == ["long-a-plugin-with-a-long-name-threshold_of_the_projection-sensitivity"]
