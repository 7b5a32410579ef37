"""One look for every figure: strategy order, a fixed colour per strategy, the seaborn theme."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib as mpl
import seaborn as sns

# The zoo's strategies in reading order: lower and upper bounds, regularisation, rehearsal,
# update magnitude, the gradient-projection family, NESS. Plugins follow alphabetically.
STRATEGY_ORDER = [
    "naive",
    "joint",
    "ewc",
    "si",
    "mas",
    "lwf",
    "replay",
    "agem",
    "gem",
    "frozen",
    "from-scratch",
    "hybrid-magnitude",
    "gpm",
    "sgp",
    "trgp",
    "dfgp",
    "ness",
]
_PALETTE = sns.color_palette("tab20", 20) + sns.color_palette("husl", 12)
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h"]


def ordered(names: Iterable[str]) -> list[str]:
    """`names` in the zoo's order, unknown names (plugins) after them alphabetically."""
    names = set(names)
    known = [n for n in STRATEGY_ORDER if n in names]
    return known + sorted(names - set(STRATEGY_ORDER))


def _slots(names: Iterable[str]) -> dict[str, int]:
    """A slot per strategy that does not depend on which other strategies a report holds:
    zoo strategies keep theirs; plugins take the slots after the zoo in name order."""
    names = set(names)
    extra = sorted(names - set(STRATEGY_ORDER))
    slots = {name: i for i, name in enumerate([*STRATEGY_ORDER, *extra])}
    return {name: slots[name] for name in names}


def strategy_colors(names: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """The colour of each strategy, the same in every figure."""
    return {name: _PALETTE[slot % len(_PALETTE)] for name, slot in _slots(names).items()}


def strategy_markers(names: Iterable[str]) -> dict[str, str]:
    """A marker per strategy, so that neighbouring colours stay apart in scatter plots."""
    return {name: _MARKERS[slot % len(_MARKERS)] for name, slot in _slots(names).items()}


def apply_style() -> None:
    """The theme shared by every figure; files are written with a non-interactive backend."""
    mpl.use("Agg")
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight"})
