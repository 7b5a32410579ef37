"""Frozen, from-scratch and hybrid-magnitude training, and the parameter distances of results."""

import math

import pytest
import torch
from probes import assert_same_steps, traced_run

from baselines.from_scratch import FromScratchParams, from_scratch
from baselines.frozen import FrozenParams, frozen
from baselines.hybrid_magnitude import HybridMagnitudeParams, MagnitudeControl, hybrid_magnitude
from baselines.naive import NaiveParams, naive
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import StrategyBuild, StrategyPlugin, register_strategy


def test_alpha_min_one_is_fine_tuning_step_for_step():
    _, naive_trace = traced_run(naive, NaiveParams, {})
    _, hybrid_trace = traced_run(hybrid_magnitude, HybridMagnitudeParams, {"alpha_min": "1"})
    assert_same_steps(naive_trace, hybrid_trace)


@pytest.mark.parametrize("granularity", ["tensor", "element"])
def test_infinite_tau_and_alpha_min_zero_is_frozen_training_step_for_step(granularity):
    _, frozen_trace = traced_run(frozen, FrozenParams, {})
    limit = {"alpha_min": "0", "tau": "inf", "granularity": granularity}
    result, hybrid_trace = traced_run(hybrid_magnitude, HybridMagnitudeParams, limit)
    assert_same_steps(frozen_trace, hybrid_trace)
    assert [t["damped_fraction"] for t in result["tasks"]] == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_frozen_moves_only_the_current_head_after_task_0():
    result = run(RunSpec("split-digits", "frozen", overrides={"protocol": {"epochs": 2}}))
    for t, task in enumerate(result["tasks"][1:], start=1):
        layers = task["parameter_distance"]["layers"]
        moved = {name for name, d in layers.items() if d > 0}
        assert moved == {f"heads.{t}"}
        assert task["trainable_params"] == 5 * 100 * 2  # the heads; only the current one moves
        total = math.sqrt(sum(d * d for d in layers.values()))
        assert task["parameter_distance"]["total"] == pytest.approx(total)


class StartProbe(StrategyPlugin):
    """The backbone's weights when each task's training starts."""

    def __init__(self):
        super().__init__()
        self.starts = []

    def before_training_exp(self, strategy, **kwargs):
        self.starts.append([p.detach().clone() for p in strategy.model.backbone.parameters()])


def test_from_scratch_starts_every_task_from_the_initial_weights(registered):
    probe = StartProbe()

    def probed(model, params: FromScratchParams) -> StrategyBuild:
        return StrategyBuild(plugins=[*from_scratch(model, params).plugins, probe])

    register_strategy("test-scratch", probed)
    result = run(RunSpec("split-digits", "test-scratch", overrides={"protocol": {"epochs": 2}}))
    initial = probe.starts[0]
    assert len(probe.starts) == 5
    for start in probe.starts[1:]:
        assert all(torch.equal(a, b) for a, b in zip(initial, start, strict=True))
    assert all(task["parameter_distance"]["total"] > 0 for task in result["tasks"])


def test_soft_and_hard_rules_by_hand():
    plugin = MagnitudeControl(HybridMagnitudeParams(alpha_min=0.2, rule="soft"))
    g, ref = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # orthogonal: c = 0
    assert float(plugin._scale(g, ref)) == pytest.approx(0.2 + 0.8 * 0.5)
    assert float(plugin._scale(g, g)) == pytest.approx(1.0)
    assert float(plugin._scale(g, -g)) == pytest.approx(0.2)
    hard = MagnitudeControl(HybridMagnitudeParams(alpha_min=0.3, rule="hard", tau=0.5))
    assert float(hard._scale(g, torch.tensor([1.0, 1.0]))) == pytest.approx(1.0)  # c = 0.707
    assert float(hard._scale(g, torch.tensor([1.0, 2.0]))) == pytest.approx(0.3)  # c = 0.447
    element = MagnitudeControl(HybridMagnitudeParams(alpha_min=0.0, granularity="element"))
    scales = element._scale(torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, 1.0, 0.0]))
    assert scales.tolist() == [1.0, 0.0, 1.0]  # agree, disagree, no reference (c = 0 >= tau)
