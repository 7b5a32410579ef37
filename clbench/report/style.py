"""One look for every figure: strategy order, a fixed colour per strategy, the seaborn theme."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib as mpl
import seaborn as sns

# The zoo's strategies by family, in reading order (tables put a rule between families).
# Plugins follow alphabetically, as their own family.
FAMILIES: list[tuple[str, list[str]]] = [
    ("bounds", ["naive", "joint"]),
    ("regularisation", ["ewc", "si", "mas", "lwf"]),
    ("rehearsal", ["replay", "agem", "gem"]),
    ("projection", ["gpm", "sgp", "trgp", "dfgp", "gpcns"]),
    ("null space", ["ness", "adam-nscl"]),
    ("update magnitude", ["frozen", "from-scratch", "hybrid-magnitude", "hybrid-drift"]),
]
STRATEGY_ORDER = [name for _, members in FAMILIES for name in members]
PLUGIN_FAMILY = "plugins"
#: Strategies that see every task's data at once: upper bounds, never "best" in a table.
ORACLES = frozenset({"joint"})


def family(strategy: str) -> str:
    """The family a strategy's table row belongs to (`plugins` for outside strategies)."""
    return next((name for name, members in FAMILIES if strategy in members), PLUGIN_FAMILY)


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
