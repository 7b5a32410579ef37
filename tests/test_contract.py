"""The contract between a strategy and the harness (clbench/strategies/contract.py): declared
plugin order, the hooks' defaults and what the harness reads from them, the task index from the
template's clock, and parameter unions chosen by a selector field."""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import pytest
import torch
from torch import nn

from baselines.gpcns import GPCNSOverGPM, GPCNSOverSGP, GPCNSOverTRGP
from baselines.trgp import TRGPParams, trgp
from clbench.errors import ConfigError
from clbench.memory import kept_bytes
from clbench.protocol import ProtocolParams
from clbench.runner import task_reports
from clbench.strategies import STRATEGIES, StrategyBuild, StrategyPlugin, TaskReport
from clbench.strategies.api import strategy_from_factory
from clbench.strategies.contract import check_order
from clbench.template import task_optimizer


class First(StrategyPlugin):
    pass


class Second(StrategyPlugin):
    follows = (First,)


class Early(StrategyPlugin):
    precedes = (First,)


def test_a_plugin_out_of_its_declared_order_is_refused_in_one_line():
    check_order([First(), Second()], "s")
    check_order([Early(), First(), Second()], "s")
    with pytest.raises(ConfigError, match="plugin Second must follow First"):
        check_order([Second(), First()], "s")
    with pytest.raises(ConfigError, match="plugin Early must precede First"):
        check_order([First(), Early()], "s")


def test_trgp_built_with_its_plugins_swapped_is_refused():
    built = trgp(nn.Sequential(nn.Linear(4, 3)), TRGPParams())
    scaling, projection = built.plugins

    def swapped(model: nn.Module, params: TRGPParams) -> StrategyBuild:
        return StrategyBuild(plugins=[projection, scaling])

    strategy = strategy_from_factory("swapped", swapped)
    with pytest.raises(ConfigError, match="TrustRegionScaling must precede GradientProjection"):
        strategy.build(nn.Linear(4, 3), TRGPParams())


def test_the_hooks_defaults_ask_nothing_of_the_harness():
    plugin = StrategyPlugin()
    assert list(plugin.kept()) == [] and plugin.task_report() == TaskReport()
    assert plugin.count_trainable(nn.Linear(2, 2)) is None and plugin.decay_exempt() == []
    clock = SimpleNamespace(clock=SimpleNamespace(train_exp_counter=3))
    assert plugin.task_index(clock) == 3


class Keeps(StrategyPlugin):
    def __init__(self, tensors, report: TaskReport) -> None:
        self.tensors, self.report = tensors, report

    def kept(self):
        return self.tensors

    def task_report(self) -> TaskReport:
        return self.report


def test_kept_bytes_and_reports_sum_what_the_plugins_declare():
    data = torch.utils.data.TensorDataset(torch.zeros(10, 3), torch.zeros(10, dtype=torch.long))
    first = Keeps([torch.zeros(4, 5), data], TaskReport({"kept basis size": {"a": 2}}, {"x": 1}))
    second = Keeps([torch.zeros(3, dtype=torch.float64)], TaskReport({"rank": {"b": 7}}))
    # 20 float32 + 10 samples of 3 float32 and one int64 label + 3 float64
    assert kept_bytes([first, second]) == 4 * 20 + 10 * (3 * 4 + 8) + 8 * 3
    assert task_reports([first, second, object()]) == {
        "subspaces": {"kept basis size": {"a": 2}, "rank": {"b": 7}},
        "x": 1,
    }


class AddsAndExempts(StrategyPlugin):
    """Freezes the first layer and adds a tensor at the task boundary; decays it itself."""

    def __init__(self, model: nn.Module) -> None:
        self.extra = nn.Parameter(torch.ones(3))
        self.model = model

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.model[0].requires_grad_(False)
        self.model.register_parameter("extra", self.extra)

    def decay_exempt(self):
        return [self.extra]

    def count_trainable(self, model: nn.Module) -> int:
        return 1


def test_the_task_optimizer_covers_what_is_trainable_after_the_plugins_ran():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    plugin = AddsAndExempts(model)
    plugin.before_training_exp(None)
    protocol = ProtocolParams(weight_decay=0.1)
    optimizer, count = task_optimizer(model, [plugin], protocol)
    groups = {tuple(id(p) for p in g["params"]): g["weight_decay"] for g in optimizer.param_groups}
    assert groups == {(id(model[1].weight), id(model[1].bias)): 0.1, (id(plugin.extra),): 0.0}
    assert count == 1


@dataclass
class Red:
    kind: Literal["red"] = "red"
    depth: int = 1


@dataclass
class Blue:
    kind: Literal["blue"] = "blue"
    width: float = 2.0


def test_a_union_of_parameter_classes_is_chosen_by_its_selector():
    def colour(model: nn.Module, params: Red | Blue) -> StrategyBuild:
        return StrategyBuild()

    strategy = strategy_from_factory("colour", colour)
    assert strategy.selector == "kind" and strategy.params_types == (Red, Blue)
    assert strategy.params_type_for({}) is Red
    assert strategy.params_type_for({"kind": "blue"}) is Blue
    with pytest.raises(ConfigError, match="colour.kind: 'green' is not one of 'red', 'blue'"):
        strategy.params_type_for({"kind": "green"})


def test_a_union_without_a_selector_is_refused():
    @dataclass
    class Plain:
        depth: int = 1

    def mixed(model: nn.Module, params: Red | Plain) -> StrategyBuild:
        return StrategyBuild()

    with pytest.raises(ConfigError, match="needs a field that tells them apart"):
        strategy_from_factory("mixed", mixed)


def test_gpcns_carries_only_its_bases_parameters():
    gpcns = STRATEGIES.get("gpcns")
    assert gpcns.params_types == (GPCNSOverGPM, GPCNSOverSGP, GPCNSOverTRGP)
    fields = {t.__name__: set(t.__dataclass_fields__) for t in gpcns.params_types}
    assert "trust_samples" not in fields["GPCNSOverGPM"] | fields["GPCNSOverSGP"]
    assert "alpha" not in fields["GPCNSOverGPM"] | fields["GPCNSOverTRGP"]
    assert {"trust_samples", "coefficient"} <= fields["GPCNSOverTRGP"]
