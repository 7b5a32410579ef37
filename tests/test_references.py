"""The paper presets against the authors' scripts: every value a reference script runs
(clbench/presets/references.toml) is the value a clbench run resolves to, unless the run's
protocol card names the departure as clbench's choice; every setting of those runs says where it
comes from; docs/protocols.md is what `clbench protocol --paper-page` writes."""

from pathlib import Path

import pytest

from clbench.params import coerce, field_types
from clbench.presets import load_references
from clbench.protocol import ProtocolParams
from clbench.protocol_card import paper_page
from clbench.resolution import PAPER_BENCHMARKS, RunSpec, _variant_key, resolve
from clbench.strategies import STRATEGIES

DEPARTURE = "clbench's choice"
LEVEL_ORIGINS = ("preset [", "preset", "suite", "default of", "typed by the user")


def reference_runs() -> list[tuple[str, str]]:
    return [
        (benchmark, key)
        for benchmark, tables in load_references().items()
        for key in tables
        if key != "*"
    ]


def spec_for(benchmark: str, key: str) -> RunSpec:
    variant = _variant_key(key)
    if variant is None:
        return RunSpec(benchmark, key)
    strategy, name, value = variant
    return RunSpec(benchmark, strategy, overrides={strategy: {name: value}})


def field_type(resolved, setting: str):
    owner, _, name = setting.partition(".")
    if setting == "model":
        return str
    if owner == "protocol":
        return field_types(ProtocolParams)[name]
    if owner == "model":
        return field_types(type(resolved.model_params))[name]
    return field_types(type(resolved.strategy_params))[name]


def json_value(tp, value):
    """A reference value as the card shows it: converted to the field's type, tuples as lists."""
    converted = coerce(tp, value, "reference")
    return list(converted) if isinstance(converted, tuple) else converted


def test_every_paper_benchmark_has_reference_tables():
    assert set(load_references()) == set(PAPER_BENCHMARKS)
    for benchmark in PAPER_BENCHMARKS:
        assert "*" in load_references()[benchmark]


@pytest.mark.parametrize(("benchmark", "key"), reference_runs())
def test_the_run_resolves_to_the_reference_values_or_names_the_departure(benchmark, key):
    resolved = resolve(spec_for(benchmark, key))
    card = {s.name: s for s in resolved.card}
    table = load_references()[benchmark][key]
    wrong = []
    for setting, entry in table.items():
        if setting == "script":
            continue
        value, _ = entry
        expected = json_value(field_type(resolved, setting), value)
        line = card[setting]
        if line.value != expected and not line.source.startswith(DEPARTURE):
            wrong.append(f"{setting}: runs {line.value!r}, the script {expected!r} ({line.source})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("benchmark", "key"), reference_runs())
def test_every_setting_of_a_paper_run_says_where_it_comes_from(benchmark, key):
    resolved = resolve(spec_for(benchmark, key))
    unexplained = [
        f"{s.name} = {s.value!r} ({s.source})"
        for s in resolved.card
        if s.used and s.source.startswith(LEVEL_ORIGINS)
    ]
    variant = _variant_key(key)
    if variant is not None:  # the parameter that selects the variant is set by the test
        unexplained = [u for u in unexplained if not u.startswith(f"{variant[0]}.{variant[1]} ")]
    assert not unexplained, "\n".join(unexplained)


def test_the_card_of_a_value_equal_to_the_reference_cites_the_script_line():
    card = {s.name: s for s in resolve(RunSpec("pmnist", "trgp")).card}
    assert (card["trgp.trust_threshold"].value, card["trgp.trust_threshold"].source) == (
        0.2,
        "LYang-666/TRGP main_pmnist.py:27, 415",
    )
    assert card["protocol.restore"].value == "last"
    assert card["protocol.lr_min"].used is False  # the fixed schedule never reads it
    assert card["trgp.ranking"].source.startswith(DEPARTURE)


def test_a_typed_value_is_cited_as_typed_even_when_it_equals_the_reference():
    spec = RunSpec("pmnist", "trgp", typed={"trgp": {"trust_threshold": "0.2"}})
    card = {s.name: s.source for s in resolve(spec).card}
    assert card["trgp.trust_threshold"] == "typed by the user"


@pytest.mark.slow
def test_docs_protocols_page_is_what_the_command_writes():
    page = Path(__file__).parents[1] / "docs" / "protocols.md"
    assert page.read_text() == paper_page(), (
        "docs/protocols.md is out of date: clbench protocol --paper-page > docs/protocols.md"
    )


@pytest.mark.slow
def test_the_page_holds_a_card_for_every_strategy_of_the_zoo_on_every_paper_benchmark():
    page = paper_page()
    for benchmark in PAPER_BENCHMARKS:
        assert f"## {benchmark}" in page
    for name, _ in STRATEGIES.items():
        assert f"### {name}" in page
