"""Per-benchmark presets: the benchmarks' (model and shared protocol, `benchmarks.toml` here) and
each strategy's, which a strategy's package ships beside its code and registers under the
`clbench.presets` entry point (docs/extending.md, "Presets"); and the values the authors' scripts
run (`references.toml`), which protocol cards cite.

A strategy's preset file maps a benchmark to its table: the strategy's parameters, its own
training protocol (`protocol`, a sub-table) and variants (`"FIELD=VALUE"` sub-tables, which apply
while the parameter FIELD has that value, with their own `protocol`). `extends = "S2"` in a table
starts from strategy S2's table on the same benchmark; `source` and `sources` say where values come
from. The entry point's value names the package and the file inside it:
`gpm = "baselines:gpm.toml"`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from importlib.metadata import entry_points
from typing import Any

from clbench.errors import ConfigError
from clbench.params import require

PRESETS_GROUP = "clbench.presets"
NOTE_KEYS = ("source", "sources")  # preset-table keys that annotate values, not set them
OWN_PROTOCOL = "protocol"


@cache
def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("clbench").joinpath(f"presets/{name}.toml").read_text())


def strategy_preset_files() -> dict[str, tuple[str, str]]:
    """{strategy: (package, file)} of every registered preset file."""
    found = {}
    for point in entry_points(group=PRESETS_GROUP):
        require(
            point.attr is not None,
            f"entry point {PRESETS_GROUP}.{point.name} = {point.value!r}: expected "
            "'package:file.toml'",
        )
        found[point.name] = (point.module, str(point.attr))
    return found


@cache
def strategy_presets(strategy: str, package: str, file: str) -> dict[str, Any]:
    """The tables of one strategy's preset file, by benchmark."""
    where = f"presets of {strategy} ({package}:{file})"
    try:
        text = resources.files(package).joinpath(file).read_text()
        tables = tomllib.loads(text)
    except (OSError, ModuleNotFoundError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{where} cannot be read: {err}") from None
    for benchmark, table in tables.items():
        require(isinstance(table, dict), f"{where}: {benchmark} must be a table")
    return tables


def broken_presets() -> dict[str, str]:
    """{strategy: why} of the preset files that cannot be read; the others still apply."""
    broken = {}
    for strategy, (package, file) in strategy_preset_files().items():
        try:
            strategy_presets(strategy, package, file)
        except ConfigError as err:
            broken[strategy] = str(err)
    return broken


def combined_presets() -> dict[str, Any]:
    """The benchmarks' presets with every readable strategy file's tables placed under them, as
    `strategies.<key>` (parameters) and `strategy_protocol.<key>` (own protocol)."""
    combined = {name: dict(preset) for name, preset in _toml("benchmarks").items()}
    broken = broken_presets()
    for strategy, (package, file) in strategy_preset_files().items():
        if strategy in broken:
            continue
        for benchmark, table in strategy_presets(strategy, package, file).items():
            target = combined.setdefault(benchmark, {})
            for key, values in _split_variants(strategy, table).items():
                params = {k: v for k, v in values.items() if k != OWN_PROTOCOL}
                if params:
                    target.setdefault("strategies", {})[key] = params
                if OWN_PROTOCOL in values:
                    target.setdefault("strategy_protocol", {})[key] = values[OWN_PROTOCOL]
    return combined


def table_label(strategy: str, benchmark: str, key: str, protocol: bool = False) -> str:
    """Where a strategy's preset table is written, for protocol cards: its file and table
    (`preset baselines:gpcns.toml [pmnist."base=trgp".protocol]`)."""
    package, file = strategy_preset_files().get(strategy, ("?", "?"))
    variant = key.removeprefix(strategy).removeprefix(".")
    path = ".".join([benchmark, *([f'"{variant}"'] if variant else []), *(["protocol"] * protocol)])
    return f"preset {package}:{file} [{path}]"


def _split_variants(strategy: str, table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A strategy's table on one benchmark as `{strategy: own values, "strategy.F=V": variant}`."""
    variants = {k: v for k, v in table.items() if "=" in k and isinstance(v, dict)}
    plain = {k: v for k, v in table.items() if k not in variants}
    return {strategy: plain, **{f"{strategy}.{k}": dict(v) for k, v in variants.items()}}


def load_presets() -> dict[str, Any]:
    """Every benchmark's presets, the strategies' tables (from their preset files) included, with
    every `extends` applied; shaped as `{benchmark: {model, protocol, strategies: {key: table},
    strategy_protocol: {key: table}}}`, a key being a strategy's name or a variant `S.F=V`."""
    return expand_presets(combined_presets())


def expand_presets(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Presets with their `extends` applied: a benchmark's starts from the benchmark it names, a
    strategy's table from the named strategy's table of the same benchmark (`_extend_table`)."""
    expanded: dict[str, Any] = {}

    def benchmark(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        require(name not in chain, f"presets: {name} extends itself ({' -> '.join(chain)})")
        require(name in raw, f"presets: {' -> '.join(chain)} extends unknown benchmark {name!r}")
        if name not in expanded:
            own = dict(raw[name])
            parent = own.pop("extends", None)
            base = benchmark(parent, (*chain, name)) if parent else {}
            merged = _extend_table(base, {k: v for k, v in own.items() if k in NOTE_KEYS})
            merged["model"] = own.get("model", base.get("model"))
            merged["protocol"] = _extend_table(base.get("protocol", {}), own.get("protocol", {}))
            for group in ("strategies", "strategy_protocol"):
                tables = dict(base.get(group, {}))
                for key, table in own.get(group, {}).items():
                    tables[key] = _extend_table(tables.get(key, {}), table)
                merged[group] = tables
            expanded[name] = {k: v for k, v in merged.items() if v is not None}
        return expanded[name]

    for name in raw:
        benchmark(name, ())
    return {
        name: {
            **preset,
            **{
                group: {key: _strategy_extends(tables, key, (name, group)) for key in tables}
                for group, tables in preset.items()
                if group in ("strategies", "strategy_protocol")
            },
        }
        for name, preset in expanded.items()
    }


def _strategy_extends(tables: Mapping[str, Any], key: str, where: tuple[str, str]) -> dict:
    """A strategy's table with its `extends` (another strategy's table) applied."""
    table = dict(tables[key])
    parent = table.pop("extends", None)
    if parent is None:
        return table
    require(
        parent in tables and parent != key,
        f"presets [{where[0]}.{where[1]}.{key}]: extends {parent!r}, which is not a table there",
    )
    return _extend_table(_strategy_extends(tables, parent, where), table)


def _extend_table(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """`child`'s values over `parent`'s, with their notes: a child's `source` covers the whole
    table; otherwise the parent's notes stay with the values the child keeps."""
    values = {k: v for k, v in parent.items() if k not in NOTE_KEYS}
    values.update({k: v for k, v in child.items() if k not in NOTE_KEYS})
    notes: dict[str, str] = {}
    if "source" not in child:
        inherited = parent.get("source")
        notes = {
            name: parent.get("sources", {}).get(name, inherited)
            for name in values
            if name not in child and (name in parent.get("sources", {}) or inherited)
        }
    notes.update(child.get("sources", {}))
    merged = dict(values)
    if notes:
        merged["sources"] = notes
    if "source" in child:
        merged["source"] = child["source"]
    return merged


def load_references() -> dict[str, Any]:
    """The values the authors' scripts run, per benchmark and method, with script and line."""
    return _toml("references")
