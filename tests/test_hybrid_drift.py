"""hybrid-drift (docs/methods.md, "Parameter-update magnitude", second reading): its limits step
for step, the drift ball at every step, and accuracy measured on the validation split."""

from pathlib import Path

import pytest
from probes import assert_same_steps, probed_run, traced_run

from baselines.frozen import FrozenParams, frozen
from baselines.hybrid_drift import DriftBudget, HybridDriftParams, hybrid_drift
from baselines.naive import NaiveParams, naive
from clbench.data import BENCHMARKS, DataOptions
from clbench.data.benchmark import split_validation
from clbench.errors import ConfigError
from clbench.params import build_params
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import StrategyBuild, StrategyPlugin, register_strategy


def test_infinite_budget_is_fine_tuning_step_for_step():
    _, naive_trace = traced_run(naive, NaiveParams, {})
    _, drift_trace = traced_run(hybrid_drift, HybridDriftParams, {"budget": "inf"})
    assert_same_steps(naive_trace, drift_trace)


def test_zero_budget_is_frozen_training_step_for_step():
    _, frozen_trace = traced_run(frozen, FrozenParams, {})
    result, drift_trace = traced_run(hybrid_drift, HybridDriftParams, {"budget": "0"})
    assert_same_steps(frozen_trace, drift_trace)
    assert [t["clipped_fraction"] for t in result["tasks"]][1:] == [1.0] * 4


class DriftProbe(StrategyPlugin):
    """After every step of tasks >= 1: each constrained tensor's drift and its radius."""

    def __init__(self):
        super().__init__()
        self.checked = []

    def after_update(self, strategy, **kwargs):
        budget = next(p for p in strategy.plugins if isinstance(p, DriftBudget))
        params = dict(strategy.model.named_parameters())
        for name, ball in budget.balls.items():
            drift = float((params[name] - ball.anchor).norm())
            self.checked.append((drift, ball.radius, float(ball.anchor.norm())))


def test_every_step_stays_inside_the_ball_sized_by_gradient_agreement():
    probe = DriftProbe()
    result = probed_run(hybrid_drift, HybridDriftParams, {"budget": "0.05"}, probe)
    assert probe.checked
    for drift, radius, norm in probe.checked:
        assert drift <= radius * (1 + 1e-5) + 1e-7
        assert 0 <= radius <= 0.05 * norm * (1 + 1e-6)  # (1 + c) / 2 lies in [0, 1]
    assert any(drift > 0 for drift, _, _ in probe.checked)  # it does move within the ball
    assert all(0 < t["clipped_fraction"] <= 1 for t in result["tasks"][1:])
    assert all(0 < t["mean_relative_radius"] <= 0.05 for t in result["tasks"][1:])


def test_budget_must_be_non_negative():
    with pytest.raises(ConfigError, match=r"hybrid-drift.budget=-1.0 must be >= 0"):
        build_params(HybridDriftParams, {"budget": "-1"}, "hybrid-drift")


class EvaluatedSizes(StrategyPlugin):
    """The size of every experience evaluated after the last task."""

    def __init__(self):
        super().__init__()
        self.sizes = {}

    def before_eval_exp(self, strategy, **kwargs):
        self.sizes[strategy.experience.current_experience] = len(strategy.experience.dataset)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_accuracy_is_measured_on_the_chosen_split(split, registered):
    probe = EvaluatedSizes()

    def build(model, params: NaiveParams) -> StrategyBuild:
        return StrategyBuild(plugins=[probe])

    register_strategy("test-split", build)
    protocol = {"epochs": 1, "evaluate_on": split}
    result = run(RunSpec("split-digits", "test-split", overrides={"protocol": protocol}))
    assert result["spec"]["protocol"]["evaluate_on"] == split
    tasks = BENCHMARKS.get("split-digits").build(DataOptions(Path("data"), False, 0)).tasks
    pc_valid = result["spec"]["protocol"]["pc_valid"]
    for k, task in enumerate(tasks):
        _, valid = split_validation(len(task.y_train), pc_valid, 0 + k)
        expected = len(valid) if split == "validation" else len(task.y_test)
        assert probe.sizes[k] == expected


def test_validation_accuracy_needs_a_validation_split_and_a_per_task_stream():
    with pytest.raises(ConfigError, match="needs a validation split"):
        run(
            RunSpec(
                "split-digits",
                "naive",
                overrides={"protocol": {"evaluate_on": "validation", "pc_valid": "0"}},
            )
        )
    with pytest.raises(ConfigError, match="joint trains on the union"):
        run(
            RunSpec(
                "split-digits",
                "joint",
                overrides={"protocol": {"evaluate_on": "validation", "epochs": 1}},
            )
        )
