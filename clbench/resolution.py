"""Resolving a run spec: every setting of a run, decided once, with the source of its value.

Levels, lowest first (docs/usage.md, "Presets and precedence"):
1. the dataclass defaults of the protocol, the model options and the strategy's parameters (a
   parameter class may state where a default comes from in a `SOURCES` class attribute);
2. the shipped presets (`clbench.presets`): the benchmark's (`clbench/presets/benchmarks.toml`) and
   the strategy's own, beside its code (`baselines/gpcns.toml`), including tables that apply only
   while a parameter of the strategy has a value (`[B."base=trgp"]`);
3. the suite: its presets, overrides and grid point (`RunSpec.overrides`);
4. what the user typed: `--set`, or `overrides` of `clbench.api.run` (`RunSpec.typed`).

The protocol is shared by every strategy of a benchmark. At the preset and suite levels a
strategy's own protocol settings (`strategy_protocol.<name>`, `<name>.protocol.FIELD`) win over the
shared ones, and `lr_scale` states lr and lr_min relative to the shared ones (docs/methods.md,
"One effective step per benchmark"). A shared value the user types applies to every strategy:
scaled where the strategy states its rate relative to the benchmark's, and refused with one line
where the strategy trains at an absolute rate of its own with another optimizer or momentum (the
typed rate would mean a different step there); a value typed for the strategy itself wins over all.

The result is a frozen `ResolvedRun`: the parameters, and the protocol card, each setting with its
value and its source. A value that equals what the authors' script for the benchmark and method
runs cites that script and line (`clbench/presets/references.toml`); otherwise the source is the
note of the preset or parameter class that set it, or the level it was given at.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from clbench.arguments import check_seed
from clbench.data import BENCHMARKS
from clbench.errors import ConfigError
from clbench.models import ModelParams
from clbench.params import build_params, coerce, field_types, params_as_dict, require
from clbench.presets import (
    NOTE_KEYS,
    broken_presets,
    load_presets,
    load_references,
    table_label,
)
from clbench.protocol import ProtocolParams, rounded
from clbench.strategies import STRATEGIES

FALLBACK_MODEL = "mlp"
OWN_PROTOCOL_PREFIX = "protocol."
TYPED = "typed by the user"
RATE_FIELDS = ("lr", "lr_min")
FIXED_SCHEDULE_UNUSED = ("lr_min", "patience", "lr_factor")
PAPER_BENCHMARKS = ("cifar100-10", "five-datasets", "miniimagenet-20", "pmnist")


@dataclass(frozen=True)
class RunSpec:
    """What to run. `overrides` (the suite level) and `typed` (what the user typed) map an owner
    (`protocol`, `model` or the strategy's name) to field values, as text from the command line or
    typed values from a suite file; under the strategy's owner, `protocol.FIELD` sets the
    strategy's own protocol. `origin` names the suite in protocol cards."""

    benchmark: str
    strategy: str
    seed: int = 0
    model: str | None = None
    device: str = "cpu"
    data_root: str = "data"
    download: bool = True
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    typed: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: str = "suite"


@dataclass(frozen=True)
class Setting:
    """One line of a protocol card: a setting (`protocol.lr`, `trgp.trust_threshold`), its value
    as JSON, where the value comes from, and whether the run uses it."""

    name: str
    value: Any
    source: str
    used: bool = True

    def as_dict(self) -> dict[str, Any]:
        found = {"setting": self.name, "value": self.value, "source": self.source}
        return found if self.used else {**found, "used": False}


@dataclass(frozen=True)
class ResolvedRun:
    """A spec with every parameter filled in, and its protocol card; its `config` names the
    run's result. Resolved once (`resolve`); everything downstream reads this value (the spec and
    the protocol are frozen too)."""

    spec: RunSpec
    model: str
    protocol: ProtocolParams
    model_params: ModelParams
    strategy_params: Any
    card: tuple[Setting, ...]

    @property
    def config(self) -> dict[str, Any]:
        """Everything that determines the numbers (not where the data lives)."""
        return {
            "benchmark": self.spec.benchmark,
            "strategy": self.spec.strategy,
            "model": self.model,
            "seed": self.spec.seed,
            "device": self.spec.device,
            "protocol": params_as_dict(self.protocol),
            "model_params": params_as_dict(self.model_params),
            "strategy_params": params_as_dict(self.strategy_params),
        }

    @property
    def name(self) -> str:
        """Stable file stem: readable prefix plus a digest of the full configuration."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.spec.benchmark}__{self.spec.strategy}__seed{self.spec.seed}__{digest}"

    def card_dicts(self) -> list[dict[str, Any]]:
        """The protocol card as JSON-ready records (stored in every result file)."""
        return [setting.as_dict() for setting in self.card]


@dataclass(frozen=True)
class Given:
    """A value set at some level, with the source that level gives for it."""

    value: Any
    source: str


@dataclass(frozen=True)
class Table:
    """One level's values of an owner, and where they come from: a preset table carries notes
    (`source` for the table, `sources` per field) and cites the references; a suite or the user's
    typing is its own source."""

    values: Mapping[str, Any]
    origin: str
    notes: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None
    cites: bool = False

    @classmethod
    def of_preset(cls, table: Mapping[str, Any] | None, origin: str) -> Table:
        table = table or {}
        values = {k: v for k, v in table.items() if k not in NOTE_KEYS}
        return cls(values, origin, table.get("sources", {}), table.get("source"), cites=True)

    def given(self, name: str, tp: Any, where: str, reference: Given | None) -> Given:
        """The value of `name` in this table, converted to `tp`, with its source: the table's
        note for it, else the reference when the value is the reference's, else the table's
        note, else the level it comes from."""
        value = coerce(tp, self.values[name], where)
        if name in self.notes:
            return Given(value, self.notes[name])
        if self.cites and reference is not None and reference.value == value:
            return Given(value, reference.source)
        return Given(value, self.note or self.origin)


def _variant_key(name: str) -> tuple[str, str, str] | None:
    """`"gpcns.base=trgp"` -> ("gpcns", "base", "trgp"); None for a plain strategy key."""
    owner, dot, rest = name.partition(".")
    field_name, eq, value = rest.partition("=")
    return (owner, field_name, value) if dot and eq else None


def _matching(tables: Mapping[str, Any], strategy: str, params: Any) -> list[str]:
    """The keys of `tables` that apply to `strategy` with parameters `params`: its own, then
    those of its variants whose parameter has the named value, in file order."""
    keys = [strategy] if strategy in tables else []
    types = field_types(type(params))
    registered = STRATEGIES.get(strategy)
    for key in tables:
        variant = _variant_key(key)
        if variant is None or variant[0] != strategy:
            continue
        _, name, value = variant
        if name not in types:
            raise ConfigError(f"preset table {key!r}: {strategy} has no parameter {name!r}")
        if name == registered.selector and value in registered.choices():
            if value == getattr(params, name):  # else another class of the union's table
                keys.append(key)
        elif getattr(params, name) == coerce(types[name], value, key):
            keys.append(key)
    return keys


class References:
    """The reference values of one benchmark and strategy (variants included), as `Given`s
    citing the script and line (`clbench/presets/references.toml`): a benchmark's `"*"` table
    holds the protocol its family shares, a strategy's table what its own script runs."""

    def __init__(self, benchmark: str, strategy: str, params: Any) -> None:
        tables = load_references().get(benchmark, {})
        self.found: dict[str, Given] = {}
        for key in ["*", *_matching(tables, strategy, params)]:
            table = tables.get(key, {})
            script = table.get("script", "")
            for name, entry in table.items():
                if name != "script":
                    value, where = entry
                    cite = f"{script}:{where}" if where[:1].isdigit() else where
                    self.found[name] = Given(value, cite)

    def get(self, name: str, tp: Any) -> Given | None:
        """The reference for setting `name`, its value converted to the field type `tp`."""
        found = self.found.get(name)
        return None if found is None else Given(coerce(tp, found.value, name), found.source)


def _known(name: str, types: dict[str, Any], owner: str) -> None:
    require(
        name in types, f"unknown field {owner}.{name}; valid fields of {owner}: {', '.join(types)}"
    )


def _merge(tables: list[Table], refs: References, owner: str, types: dict) -> dict[str, Given]:
    """The winning value of every field set in `tables` (later wins), with its source."""
    merged: dict[str, Given] = {}
    for table in tables:
        for name in table.values:
            _known(name, types, owner)
            reference = refs.get(f"{owner}.{name}", types[name])
            merged[name] = table.given(name, types[name], f"{owner}.{name}", reference)
    return merged


def _own_values(
    own: list[Table], refs: References, owner: str
) -> tuple[dict[str, Given], Given | None]:
    """A strategy's own protocol levels merged: a later `lr` or `lr_scale` replaces an earlier
    one of either kind. Returns the fields and the scale (None: no relative rate)."""
    types = {**field_types(ProtocolParams), "lr_scale": float}
    merged: dict[str, Given] = {}
    for table in own:
        for name in table.values:
            _known(name, types, owner)
            if name in ("lr", "lr_scale"):
                merged.pop("lr", None)
                merged.pop("lr_scale", None)
            reference = refs.get(f"protocol.{name}", types[name]) if name != "lr_scale" else None
            merged[name] = table.given(name, types[name], f"{owner}.{name}", reference)
    return merged, merged.pop("lr_scale", None)


def _protocol(
    spec: RunSpec, shared: list[Table], own: list[Table], refs: References
) -> dict[str, Given]:
    """The protocol fields set at some level, with their sources (module docstring); the last
    table of `own` is what the user typed for the strategy."""
    owner = f"{spec.strategy}.protocol"
    typed = Table(spec.typed.get("protocol", {}), TYPED)
    shared_values = _merge([*shared, typed], refs, "protocol", field_types(ProtocolParams))
    mine, scale = _own_values(own, refs, owner)
    overruled = set(typed.values) - set(own[-1].values)
    final = dict(shared_values)
    for name, given in mine.items():
        if name in overruled:  # the shared value the user typed wins over a shipped own one
            _check_typed_rate(spec, name, typed.values[name], mine, shared_values)
        else:
            final[name] = given
    if scale is not None:
        factor = scale.value
        require(factor > 0, f"{owner}.lr_scale={factor} must be > 0")
        for name in RATE_FIELDS:
            if name in mine and name not in overruled:
                continue
            base = shared_values.get(name, Given(getattr(ProtocolParams, name), "default"))
            final[name] = Given(
                rounded(factor * base.value),
                f"lr_scale {factor:g} ({scale.source}) x the benchmark's {base.value:g} "
                f"({base.source})",
            )
    return final


def _check_typed_rate(
    spec: RunSpec, name: str, typed: Any, mine: dict[str, Given], shared: dict[str, Given]
) -> None:
    """A typed shared lr or lr_min cannot replace the absolute rate of a strategy that trains
    with another optimizer or momentum than the benchmark's: the same number is another step."""
    if name not in RATE_FIELDS:
        return
    for other in ("optimizer", "momentum"):
        if other not in mine:
            continue
        theirs = shared.get(other, Given(getattr(ProtocolParams, other), "")).value
        if mine[other].value != theirs:
            raise ConfigError(
                f"--set protocol.{name}={typed} does not apply to {spec.strategy} on "
                f"{spec.benchmark}: it trains with {other} {mine[other].value} at its own "
                f"{name} {mine[name].value}; set {spec.strategy}.protocol.{name} as well"
            )


def _levels(spec: RunSpec, owner: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The suite's and the typed values of `owner`."""
    return dict(spec.overrides.get(owner, {})), dict(spec.typed.get(owner, {}))


def _split_own(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A strategy owner's values split into its own protocol fields and its parameters."""
    own = {
        k.removeprefix(OWN_PROTOCOL_PREFIX): v
        for k, v in values.items()
        if k.startswith(OWN_PROTOCOL_PREFIX)
    }
    return own, {k: v for k, v in values.items() if not k.startswith(OWN_PROTOCOL_PREFIX)}


def _check_spec(spec: RunSpec) -> None:
    BENCHMARKS.get(spec.benchmark)
    STRATEGIES.get(spec.strategy)
    unreadable = broken_presets().get(spec.strategy)
    if unreadable is not None:
        raise ConfigError(unreadable)
    check_seed(spec.seed)
    check_owners([*spec.overrides, *spec.typed], [spec.strategy])
    if spec.device not in ("cpu", "cuda") and not spec.device.startswith("cuda:"):
        raise ConfigError(f"device {spec.device!r} is not valid; use cpu, cuda or cuda:N")
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec.device!r} requested but CUDA is not available; use cpu")


def check_owners(owners: Iterable[str], strategies: Iterable[str]) -> None:
    """Every owner of typed or suite values is `protocol`, `model` or one of `strategies`."""
    valid = {"protocol", "model", *strategies}
    for owner in owners:
        if owner not in valid:
            raise ConfigError(
                f"--set {owner}.*: unknown owner {owner!r}; valid: {', '.join(sorted(valid))}"
            )


def suite_level(table: Mapping[str, Any], strategy: str) -> dict[str, dict[str, Any]]:
    """A suite's table for one benchmark (`[presets.B]`) as `strategy`'s suite-level values
    (`RunSpec.overrides`): its `protocol` benchmark-wide, its `strategies.<name>` the strategy's
    parameters and its `strategy_protocol.<name>` the strategy's own protocol, which wins over the
    benchmark-wide one (level 3 of the module docstring)."""
    own = {
        f"{OWN_PROTOCOL_PREFIX}{name}": value
        for name, value in table.get("strategy_protocol", {}).get(strategy, {}).items()
    }
    chosen = {
        "protocol": dict(table.get("protocol", {})),
        strategy: {**table.get("strategies", {}).get(strategy, {}), **own},
    }
    return {owner: values for owner, values in chosen.items() if values}


def _strategy_params(
    spec: RunSpec, preset: Mapping[str, Any], suite: dict, typed: dict
) -> tuple[Any, dict[str, Given], list[str], References]:
    """The strategy's parameters (preset tables of matching variants included), their sources,
    the matching preset keys and the references."""
    strategy = STRATEGIES.get(spec.strategy)
    tables = preset.get("strategies", {})
    levels = [Table(suite, spec.origin), Table(typed, TYPED)]
    plain = [Table.of_preset(tables.get(spec.strategy), "preset"), *levels]  # selectors only
    plain_values = {k: v for t in plain for k, v in t.values.items()}
    params_type = strategy.params_type_for(plain_values)
    first = build_params(params_type, plain_values, spec.strategy)
    keys = _matching({**tables, **preset.get("strategy_protocol", {})}, spec.strategy, first)
    preset_tables = [
        Table.of_preset(tables[key], table_label(spec.strategy, spec.benchmark, key))
        for key in keys
        if key in tables
    ]
    refs = References(spec.benchmark, spec.strategy, first)
    types = field_types(params_type)
    given = _merge([*preset_tables, *levels], refs, spec.strategy, types)
    params = build_params(params_type, {k: g.value for k, g in given.items()}, spec.strategy)
    for key in keys:  # a variant's table may not change the parameter that selects it
        variant = _variant_key(key)
        if variant is not None:
            require(
                getattr(params, variant[1]) == getattr(first, variant[1]),
                f"preset table {key!r} changes {variant[1]}, which selects it",
            )
    return params, given, keys, refs


def _default_source(params_type: type, name: str, reference: Given | None, value: Any) -> str:
    if reference is not None and reference.value == value:
        return reference.source
    return getattr(params_type, "SOURCES", {}).get(name, f"default of {params_type.__name__}")


def _card(
    owner: str, params: Any, given: dict[str, Given], refs: References, unused: tuple = ()
) -> list[Setting]:
    """Every field of `params` as a card line: the value, and the source of the level that set
    it, or of the default."""
    lines = []
    types = field_types(type(params))
    for f in dataclasses.fields(params):
        value = params_as_dict(params)[f.name]
        if f.name in given:
            source = given[f.name].source
        else:
            reference = refs.get(f"{owner}.{f.name}", types[f.name])
            source = _default_source(type(params), f.name, reference, getattr(params, f.name))
        lines.append(Setting(f"{owner}.{f.name}", value, source, f.name not in unused))
    return lines


def resolve(spec: RunSpec) -> ResolvedRun:
    """Check every name and value of `spec`, fill in the parameters and write the protocol card
    (module docstring). The strategy's parameter class may check the protocol
    (`check_protocol`, as the projection family's refuses momentum)."""
    _check_spec(spec)
    preset = load_presets().get(spec.benchmark, {})
    suite_own, suite_params = _split_own(spec.overrides.get(spec.strategy, {}))
    typed_own, typed_params = _split_own(spec.typed.get(spec.strategy, {}))
    params, given_params, keys, refs = _strategy_params(spec, preset, suite_params, typed_params)
    own_tables = preset.get("strategy_protocol", {})
    own = [
        *(
            Table.of_preset(own_tables[key], table_label(spec.strategy, spec.benchmark, key, True))
            for key in keys
            if key in own_tables
        ),
        Table(suite_own, spec.origin),
        Table(typed_own, TYPED),
    ]
    shared = [
        Table.of_preset(
            preset.get("protocol"), f"preset [{spec.benchmark}.protocol] of the benchmark"
        ),
        Table(spec.overrides.get("protocol", {}), spec.origin),
    ]
    given_protocol = _protocol(spec, shared, own, refs)
    protocol = build_params(
        ProtocolParams, {k: g.value for k, g in given_protocol.items()}, "protocol"
    )
    check = getattr(params, "check_protocol", None)
    if check is not None:
        check(protocol)
    suite_model, typed_model = _levels(spec, "model")
    model_types = field_types(ModelParams)
    given_model = _merge(
        [Table(suite_model, spec.origin), Table(typed_model, TYPED)], refs, "model", model_types
    )
    model_params = build_params(ModelParams, {k: g.value for k, g in given_model.items()}, "model")
    if spec.model is not None:
        model = Given(spec.model, TYPED)
    elif "model" in preset:
        table = Table.of_preset({"model": preset["model"], **_notes(preset)}, "preset")
        model = table.given("model", str, "model", refs.get("model", str))
    else:
        model = Given(FALLBACK_MODEL, "clbench's fallback for benchmarks without a preset")
    unused = FIXED_SCHEDULE_UNUSED if protocol.schedule == "fixed" else ()
    card = (
        Setting("model", model.value, model.source),
        *_card("model", model_params, given_model, refs),
        *_card("protocol", protocol, given_protocol, refs, unused),
        *_card(spec.strategy, params, given_params, refs, unused_fields(params)),
    )
    return ResolvedRun(spec, model.value, protocol, model_params, params, card)


def unused_fields(params: Any) -> tuple[str, ...]:
    """The parameters a strategy's settings leave unread (its optional `unused_fields()`), which
    protocol cards mark unused."""
    found = getattr(params, "unused_fields", None)
    return tuple(found()) if found is not None else ()


def _notes(preset: Mapping[str, Any]) -> dict[str, Any]:
    """The benchmark-level notes of a preset, for its `model` key."""
    return {k: preset[k] for k in NOTE_KEYS if k in preset}
