from dataclasses import dataclass
from importlib.metadata import EntryPoint

import pytest
from torch import nn

from clbench import registry
from clbench.errors import ConfigError
from clbench.strategies import STRATEGIES, StrategyBuild
from clbench.strategies.api import strategy_from_factory

CLASSICS = ["agem", "ewc", "gem", "joint", "lwf", "mas", "naive", "replay", "si"]


@dataclass
class NoParams:
    pass


def good_factory(model: nn.Module, params: NoParams) -> StrategyBuild:
    """A good strategy."""
    return StrategyBuild()


def test_the_zoo_registers_through_entry_points():
    names = [name for name, _ in STRATEGIES.items()]
    assert set(CLASSICS) <= set(names)
    assert STRATEGIES.get("ewc").params_type.__name__ == "EWCParams"
    assert STRATEGIES.broken() == {}


def test_factory_signature_is_checked():
    def three(model, params, extra):
        return StrategyBuild()

    def untyped(model, params):
        return StrategyBuild()

    with pytest.raises(ConfigError, match=r"takes \(model, params, extra\); expected def factory"):
        strategy_from_factory("three", three)
    with pytest.raises(ConfigError, match="must be annotated with a dataclass"):
        strategy_from_factory("untyped", untyped)
    assert strategy_from_factory("good", good_factory).summary == "A good strategy."


def test_unknown_and_duplicate_names():
    with pytest.raises(
        ConfigError, match="unknown strategy 'nope'; valid strategy names: adam-nscl, agem, "
    ):
        STRATEGIES.get("nope")
    with pytest.raises(ConfigError, match="strategy 'naive' is already registered"):
        STRATEGIES.register("naive", good_factory)


def test_an_entry_point_that_fails_to_import_is_named_and_the_rest_still_works(monkeypatch):
    points = [
        EntryPoint("fine", "test_registry:good_factory", "clbench.strategies"),
        EntryPoint("broken", "no_such_module_xyz:factory", "clbench.strategies"),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    fresh = registry.Registry("strategy", "clbench.strategies", strategy_from_factory)
    assert fresh.get("fine").summary == "A good strategy."
    assert "ModuleNotFoundError" in fresh.broken()["broken"]
    with pytest.raises(ConfigError, match="strategy 'broken' could not be loaded: no_such_module"):
        fresh.get("broken")


def test_two_packages_claiming_one_name_is_reported(monkeypatch):
    points = [
        EntryPoint("twice", "test_registry:good_factory", "clbench.strategies"),
        EntryPoint("twice", "other_pkg:factory", "clbench.strategies"),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    fresh = registry.Registry("strategy", "clbench.strategies", strategy_from_factory)
    with pytest.raises(ConfigError, match="registered twice"):
        fresh.get("twice")
