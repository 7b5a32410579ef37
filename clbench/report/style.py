"""One look for every figure: printed sizes, a colour and marker per table row, the seaborn
theme."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import seaborn as sns

#: Printed widths of a figure (inches): one column and the full text width of a two-column paper.
SINGLE_COLUMN_IN = 3.3
DOUBLE_COLUMN_IN = 6.9
#: The tallest a figure page is drawn; taller figures are split into numbered pages.
PAGE_HEIGHT_IN = 8.5
#: No text in a figure is smaller than this once the figure is placed at its width.
MIN_FONT_PT = 7

# Matplotlib's ten default colours, then twelve darker or more saturated ones chosen to stay apart
# from them; beyond 22 rows colours are spread evenly over hues.
_PALETTE = sns.color_palette("tab10", 10) + sns.color_palette(
    [
        "#000000",
        "#000080",
        "#800000",
        "#006400",
        "#daa520",
        "#9a6324",
        "#ff1493",
        "#008080",
        "#6a5acd",
        "#32cd32",
        "#fa8072",
        "#808000",
    ]
)
# Filled shapes, ordered so that similar ones (the polygons) are far apart in the cycle.
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "d", "h"]


@dataclass(frozen=True)
class RowStyle:
    """How one table row (a strategy, or one grid variant of it) is drawn in every figure."""

    color: tuple[float, float, float]
    marker: str


def row_styles(rows: Sequence[Hashable]) -> dict[Hashable, RowStyle]:
    """A colour and a marker per row, in the order given (the table's order).

    Every row's colour differs from every other's; markers cycle through 13 shapes, so rows next
    to each other (the variants of one strategy among them) never share one."""
    colors = _PALETTE if len(rows) <= len(_PALETTE) else sns.color_palette("husl", len(rows))
    return {row: RowStyle(colors[i], _MARKERS[i % len(_MARKERS)]) for i, row in enumerate(rows)}


def apply_style() -> None:
    """The theme shared by every figure: sizes in points as printed (figures are drawn at their
    printed width and saved without resizing), a non-interactive backend, embeddable PDF fonts."""
    mpl.use("Agg")
    sns.set_theme(context="paper", style="whitegrid")
    mpl.rcParams.update(
        {
            "font.size": 8,
            "axes.titlesize": 8,
            "axes.labelsize": 8,
            "figure.titlesize": 8,
            "figure.labelsize": 8,
            "xtick.labelsize": MIN_FONT_PT,
            "ytick.labelsize": MIN_FONT_PT,
            "legend.fontsize": MIN_FONT_PT,
            "legend.title_fontsize": MIN_FONT_PT,
            "legend.frameon": False,
            "lines.linewidth": 1.0,
            "lines.markersize": 4,
            "axes.linewidth": 0.6,
            "grid.linewidth": 0.4,
            "figure.constrained_layout.use": True,
            "figure.dpi": 100,
            "savefig.dpi": 300,
            "savefig.bbox": "standard",
            "pdf.fonttype": 42,
            "text.usetex": False,  # names from result files never reach TeX (`text.figure_text`)
        }
    )
