"""Strategies declare how reports present them (`describe`); registration reads it and every
result file stores it."""

import importlib.util
import json
import sys
from dataclasses import dataclass

import pytest
from torch import nn

from clbench.errors import ConfigError
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.scaffold import new_strategy
from clbench.store import InvalidDocument, load_result
from clbench.strategies import STRATEGIES, StrategyBuild, register_strategy
from clbench.strategies.api import strategy_from_factory
from clbench.strategy_info import StrategyInfo, describe, info_of_result
from results import write_result


@dataclass
class NoParams:
    """No parameters."""


def plain(model: nn.Module, params: NoParams) -> StrategyBuild:
    """An undecorated factory."""
    return StrategyBuild()


@describe("Declared", family="tests", role="bound")
def declared(model: nn.Module, params: NoParams) -> StrategyBuild:
    """A decorated factory."""
    return StrategyBuild()


def test_the_zoo_declares_its_presentation():
    assert STRATEGIES.get("gpm").info == StrategyInfo("GPM", "projection", "method")
    assert STRATEGIES.get("naive").info == StrategyInfo("Fine-tuning", "bounds", "bound")
    assert STRATEGIES.get("joint").info == StrategyInfo("Joint", "bounds", "oracle")
    assert STRATEGIES.get("ness").info == StrategyInfo("NESS", "null space")
    assert STRATEGIES.get("from-scratch").info.role == "bound"
    zoo = [
        strategy
        for _, strategy in STRATEGIES.items()
        if strategy.factory.__module__.startswith("baselines.")
    ]
    assert len(zoo) == 20 and all(s.info.family != "plugins" for s in zoo)


def test_in_process_registration_reads_the_declaration_or_defaults(registered):
    assert register_strategy("declared-probe", declared).info == StrategyInfo(
        "Declared", "tests", "bound"
    )
    register_strategy("plain-probe", plain)
    assert STRATEGIES.get("plain-probe").info == StrategyInfo("plain-probe", "plugins")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"display_name": "X", "role": "boss"}, "'boss' is not one of method, bound, oracle"),
        ({"display_name": "  "}, "display_name '  ' must be a non-empty string"),
        ({"display_name": "X", "family": ""}, "family '' must be a non-empty string"),
    ],
)
def test_a_bad_declaration_is_a_one_line_error(arguments, named):
    with pytest.raises(ConfigError) as refused:
        describe(**arguments)
    assert named in str(refused.value) and "\n" not in str(refused.value)


def test_a_result_file_stores_the_info(tmp_path):
    result = run(RunSpec("split-digits", "naive", overrides={"protocol": {"epochs": 1}}), tmp_path)
    stored = json.loads((tmp_path / f"{result['name']}.json").read_text())
    assert stored["strategy_info"] == {
        "display_name": "Fine-tuning",
        "family": "bounds",
        "role": "bound",
    }
    loaded = load_result(tmp_path / f"{result['name']}.json")
    assert info_of_result(loaded) == StrategyInfo("Fine-tuning", "bounds", "bound")


def test_a_file_without_info_shows_its_strategy_name(tmp_path):
    path = write_result(tmp_path, "split-digits", "old-method", 0, [[90.0]])
    assert info_of_result(load_result(path)) == StrategyInfo("old-method")


@pytest.mark.parametrize(
    ("info", "why"),
    [
        ({"display_name": "X", "colour": "red"}, "unknown keys colour"),
        ({"display_name": "X", "role": "boss"}, "role 'boss' is not one of"),
        ({"display_name": ""}, "display_name '' must be a non-empty string"),
        ({"family": "bounds"}, "has no display_name"),
        (["X"], "strategy_info is a list, expected an object"),
    ],
)
def test_a_broken_stored_info_makes_the_file_invalid(tmp_path, info, why):
    path = write_result(tmp_path, "split-digits", "naive", 0, [[90.0]])
    path.write_text(json.dumps({**json.loads(path.read_text()), "strategy_info": info}))
    with pytest.raises(InvalidDocument) as refused:
        load_result(path)
    assert why in refused.value.why and "\n" not in refused.value.why


def test_the_generated_package_declares_its_info(tmp_path, monkeypatch):
    package = new_strategy("info-probe", tmp_path)
    spec = importlib.util.spec_from_file_location(
        "info_probe_strategy", package / "clbench_info_probe" / "strategy.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    strategy = strategy_from_factory("info-probe", module.info_probe)
    assert strategy.info == StrategyInfo("info-probe", "plugins", "method")
    assert "@describe" in (package / "README.md").read_text()
