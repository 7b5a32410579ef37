"""Which runs a report shows, in which order and under which names.

Every table and figure reads the same layout: one *row* per configuration of a strategy on a
benchmark (numbered from 0 in display order within the benchmark) and its *label*. By default
rows follow the families of `FAMILY_ORDER` (other families after them, alphabetically), then
display names; a strategy's grid variants follow each other, sorted by their parameter values as
numbers where they are numbers. The author may choose the strategies and their order
(`--strategies`), the benchmarks (`--benchmarks`) and the names (`--labels FILE`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clbench.errors import ClbenchError

#: The zoo's families in reading order; families an outside plugin declares follow alphabetically.
FAMILY_ORDER = (
    "bounds",
    "regularisation",
    "rehearsal",
    "projection",
    "null space",
    "update magnitude",
)


@dataclass(frozen=True)
class Selection:
    """What the author asked for: strategies (subset and order) and benchmarks by name, None
    for all; `labels` maps run labels (`run_label`) or strategy names to display names."""

    strategies: Sequence[str] | None = None
    benchmarks: Sequence[str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def run_label(strategy: str, variant: str) -> str:
    """The name a row has in result files: the strategy's registered name, and its variant."""
    return f"{strategy} ({variant})" if variant else strategy


def load_labels(path: Path) -> dict[str, str]:
    """A labels file: a TOML table mapping run labels (`ness`, `gpcns (base=gpm)`) to display
    names (`"NESS (ours)"`); one-line errors for a file that cannot be read or holds anything
    else."""
    try:
        table = tomllib.loads(Path(path).read_text())
    except OSError as err:
        raise ClbenchError(f"labels file {path}: cannot be read ({err.strerror or err})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ClbenchError(f"labels file {path}: not valid TOML ({err})") from None
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ClbenchError(
                f"labels file {path}: {key!r} = {value!r}; each run label maps to a non-empty "
                'string, e.g. ness = "NESS (ours)"'
            )
    return table


def _check_names(asked: Sequence[str] | None, present: set[str], option: str) -> None:
    unknown = [name for name in asked or () if name not in present]
    if unknown:
        raise ClbenchError(
            f"{option} {', '.join(unknown)}: not in the results; they hold "
            f"{', '.join(sorted(present))}"
        )


def _number_first(value: Any) -> tuple[int, float, str]:
    """Sort key of a parameter value: numbers by value, before other values by text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _strategy_key(selection: Selection, first: pd.Series) -> tuple:
    if selection.strategies:
        return (list(selection.strategies).index(first["strategy"]),)
    family = first["family"]
    rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    return (rank, family, first["display_name"].lower(), first["strategy"])


def _config_key(selection: Selection, config: pd.Series) -> tuple[tuple, list[tuple]]:
    """Where a configuration's row goes: its strategy's place, then its varied values."""
    varied: dict[str, Any] = config["varied"]
    return _strategy_key(selection, config), [_number_first(v) for v in varied.values()]


def _labels(
    labels: Mapping[str, str], run: str, strategy: str, variant: str, name: str
) -> tuple[str, str]:
    """A row's label, and its short form for narrow tables (a variant's values without their
    parameter names: `GPCNS (gpm, 5.0)`); a label from the labels file is used for both."""
    if run in labels:
        return labels[run], labels[run]
    base = labels.get(strategy, name)
    if not variant:
        return base, base
    values = ", ".join(part.split("=", 1)[-1] for part in variant.split(", "))
    return f"{base} ({variant})", f"{base} ({values})"


def lay_out(runs: pd.DataFrame, selection: Selection) -> tuple[pd.DataFrame, list[str]]:
    """`runs` restricted to the selection, with `row`, `run_label`, `label` and `short_label`
    columns, sorted by
    benchmark and row; and a note for each label of the labels file that names no row."""
    _check_names(selection.benchmarks, set(runs["benchmark"]), "--benchmarks")
    _check_names(selection.strategies, set(runs["strategy"]), "--strategies")
    if selection.benchmarks:
        runs = runs[runs["benchmark"].isin(selection.benchmarks)]
    if selection.strategies:
        runs = runs[runs["strategy"].isin(selection.strategies)]
    runs = runs.copy()
    runs["run_label"] = [
        run_label(s, v) for s, v in zip(runs["strategy"], runs["variant"], strict=True)
    ]
    labels = selection.labels
    names = zip(
        runs["run_label"], runs["strategy"], runs["variant"], runs["display_name"], strict=True
    )
    pairs = [_labels(labels, *row) for row in names]
    runs["label"] = [label for label, _ in pairs]
    runs["short_label"] = [short for _, short in pairs]
    rows = {}
    for _, bench in runs.groupby("benchmark", sort=False):
        configs = bench.drop_duplicates("config_key")
        keys = {i: _config_key(selection, config) for i, config in configs.iterrows()}
        keyed = sorted(configs.index, key=keys.__getitem__)
        order = {configs.at[i, "config_key"]: n for n, i in enumerate(keyed)}
        rows.update({i: order[bench.at[i, "config_key"]] for i in bench.index})
    runs["row"] = pd.Series(rows, dtype=int)
    runs = runs.sort_values(["benchmark", "row", "seed"], kind="stable").reset_index(drop=True)
    used = set(runs["run_label"]) | set(runs["strategy"])
    notes = [
        f"labels file: {key!r} names no row of the report" for key in labels if key not in used
    ]
    return runs, notes
