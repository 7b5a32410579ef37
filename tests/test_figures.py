"""Figures: drawn at paper widths with readable fonts, every series keyed, values as computed."""

import math
import re

import numpy as np
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image

from clbench.report.collect import collect
from clbench.report.figures import (
    PER_BENCHMARK,
    accuracy_matrices,
    cost,
    mean_accuracy,
    rows_of,
    save,
    subspaces,
)
from clbench.report.style import (
    DOUBLE_COLUMN_IN,
    MIN_FONT_PT,
    PAGE_HEIGHT_IN,
    SINGLE_COLUMN_IN,
    apply_style,
    row_styles,
)
from results import write_result

NAIVE = {0: [[90, 0, 0], [60, 80, 0], [50, 60, 100]], 1: [[80, 0, 0], [70, 90, 0], [30, 70, 90]]}
GPM = {0: [[90, 0, 0], [90, 80, 0], [80, 80, 70]], 1: [[100, 0, 0], [100, 90, 0], [100, 90, 80]]}
# Kept basis sizes per layer after each task, per seed (GPM records them after every task).
BASIS = {0: {"fc1": [10, 20, 30], "fc2": [5, 9, 12]}, 1: {"fc1": [12, 22, 34], "fc2": [5, 8, 12]}}
# Null-space ranks of the tasks after the first (nothing on task 0).
NULL = {0: {"fc1": [None, 50, 40]}, 1: {"fc1": [None, 46, 38]}}


def _task_extras(key: str, sizes: dict[str, list]) -> list[dict]:
    n = len(next(iter(sizes.values())))
    return [{key: {k: v[t] for k, v in sizes.items() if v[t] is not None}} for t in range(n)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """naive, joint, gpm (with basis sizes), adam-nscl (null-space ranks) and a two-variant grid
    of ness, two seeds each, on a three-task benchmark."""
    apply_style()
    folder = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        write_result(folder, "toy", "naive", seed, NAIVE[seed], seconds=10 + seed, kept=0)
        write_result(folder, "toy", "joint", seed, GPM[seed], seconds=30, kept=0)
        write_result(
            folder,
            "toy",
            "gpm",
            seed,
            GPM[seed],
            seconds=20,
            kept=4000 + 2000 * seed,
            task_extras=_task_extras("basis_sizes", BASIS[seed]),
        )
        write_result(
            folder,
            "toy",
            "adam-nscl",
            seed,
            GPM[seed],
            seconds=25,
            kept=10**6,
            task_extras=_task_extras("null_space_rank", NULL[seed]),
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
    return collect(folder).runs


@pytest.fixture(scope="module")
def drawn(runs):
    figures = [d for draw in PER_BENCHMARK for d in draw(runs, "toy")]
    for d in figures:
        d.figure.canvas.draw()  # lay out, so that texts and ticks are final
    return figures


def test_the_report_draws_every_kind_of_figure(drawn):
    assert [d.stem for d in drawn] == [
        "toy-acc-bwt",
        "toy-mean-accuracy",
        "toy-accuracy-matrices",
        "toy-cost",
        "toy-accuracy-vs-cost",
        "toy-kept-basis-size",
        "toy-null-space-rank",
        "toy-ness-eps1-sensitivity",
    ]


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


def _keys(figure) -> set[str]:
    """Every name a reader can match a series to: legend entries, tick labels, titles."""
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
    keys = {t.get_text() for legend in legends for t in legend.get_texts()}
    for ax in figure.axes:
        keys |= {t.get_text() for t in ax.get_yticklabels()}
        keys.add(ax.get_title())
    keys.add(figure._suptitle.get_text() if figure._suptitle else "")
    return keys


def test_every_series_is_named_and_every_panel_holds_one(drawn):
    for d in drawn:
        keys = _keys(d.figure)
        panels = [ax for ax in d.figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        for ax in panels:
            named = {a.get_gid() for a in ax.findobj() if a.get_gid()}
            assert named, f"{d.stem}: a panel with no series"
            unkeyed = {gid for gid in named if not any(gid in key for key in keys)}
            assert not unkeyed, f"{d.stem}: {unkeyed} drawn but named nowhere"


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
    ness = [r.style.marker for r in rows if r.strategy == "ness"]
    assert ness[0] != ness[1]
    styles = {r.label: r.style for r in rows}
    for d in drawn:
        for line in d.figure.findobj(Line2D):
            if line.get_gid() in styles:
                style = styles[line.get_gid()]
                assert to_rgb(line.get_color()) == pytest.approx(style.color), d.stem
                if d.stem != "toy-ness-eps1-sensitivity":
                    assert line.get_marker() == style.marker, d.stem
    many = row_styles(list(range(40)))
    assert len({s.color for s in many.values()}) == 40
    markers = [s.marker for s in many.values()]
    assert all(a != b for a, b in zip(markers, markers[1:], strict=False))


def test_accuracy_matrix_cells_hold_the_seed_means_on_a_fitted_scale(runs):
    (figure,) = [d.figure for d in accuracy_matrices(runs, "toy")]
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


def test_mean_accuracy_is_the_mean_over_the_tasks_learned_with_a_seed_band(runs):
    (drawn,) = mean_accuracy(runs, "toy")
    ax = drawn.figure.axes[0]
    line = next(a for a in ax.get_lines() if a.get_gid() == "naive")
    # seed 0: 90, (60+80)/2, (50+60+100)/3; seed 1: 80, (70+90)/2, (30+70+90)/3
    per_seed = np.array([[90, 70, 70], [80, 80, 190 / 3]])
    np.testing.assert_allclose(line.get_ydata(), per_seed.mean(axis=0))
    band = next(
        c for c in ax.collections if isinstance(c, PolyCollection) and c.get_gid() == "naive"
    )
    vertices = band.get_paths()[0].vertices
    at_two = vertices[np.isclose(vertices[:, 0], 2), 1]
    std = np.std([70, 80], ddof=1)
    assert at_two.min() == pytest.approx(75 - std) and at_two.max() == pytest.approx(75 + std)


def test_cost_axes_are_logarithmic_and_show_keeping_nothing_as_zero(runs):
    (drawn,) = cost(runs, "toy")
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
    basis, null = subspaces(runs, "toy")
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


def test_many_rows_of_long_matrices_are_split_into_pages_that_fit(tmp_path):
    apply_style()
    ten = [[80.0 if j <= t else 0.0 for j in range(10)] for t in range(10)]
    for k in range(12):
        write_result(tmp_path, "long", f"plugin-{k:02d}", 0, ten)
    pages = accuracy_matrices(collect(tmp_path).runs, "long")
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
    (drawn,) = cost(collect(tmp_path).runs, "toy")
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
        extras = [{}, {"null_space_rank": {"fc1": rank}}]
        write_result(tmp_path, "toy", "adam-nscl", seed, full[seed], task_extras=extras)
    runs = collect(tmp_path).runs

    def band_bounds(figure) -> tuple[float, float]:
        band = next(c for c in figure.axes[0].collections if isinstance(c, PolyCollection))
        vertices = band.get_paths()[0].vertices
        return vertices[:, 1].min(), vertices[:, 1].max()

    (null,) = subspaces(runs, "toy")
    low, high = band_bounds(null.figure)
    assert low == 0 and high == pytest.approx(1 + math.sqrt(2))
    (curve,) = mean_accuracy(runs, "toy")
    low, high = band_bounds(curve.figure)
    assert high == 100 and low == pytest.approx(95 - np.std([100, 90], ddof=1))
