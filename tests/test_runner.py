"""End-to-end runs on the offline split-digits benchmark."""

from dataclasses import dataclass

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from clbench.evaluation import AccuracyRecorder
from clbench.resolution import RunSpec, resolve
from clbench.runner import evaluate, run
from clbench.store import read_result
from clbench.strategies import StrategyBuild, register_strategy

QUICK = {"protocol": {"epochs": 3}}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["naive", "ewc"])
def test_split_digits_reaches_task_incremental_acc_above_090(tmp_path, strategy):
    result = run(RunSpec("split-digits", strategy, seed=0), tmp_path)
    matrix = result["accuracy_matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert result["metrics"]["acc"] > 90
    assert read_result(tmp_path / f"{result['name']}.json") == result


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["joint", "lwf", "si", "mas", "agem", "gem", "replay"])
def test_every_classic_strategy_runs_end_to_end(tmp_path, strategy):
    result = run(RunSpec("split-digits", strategy, seed=0), tmp_path)
    matrix = torch.tensor(result["accuracy_matrix"])
    # every task is learned when it is trained (two classes: chance is 0.5)
    assert (matrix.diagonal() > 80).all()
    assert read_result(tmp_path / f"{result['name']}.json") is not None
    assert result["tasks"][0]["trainable_params"] > 0


def test_memory_keeping_strategies_report_bytes(tmp_path):
    naive = run(RunSpec("split-digits", "naive", overrides=QUICK))
    ewc = run(RunSpec("split-digits", "ewc", overrides=QUICK))
    assert all(task["kept_bytes"] == 0 for task in naive["tasks"])
    params = naive["total_params"] * 4
    # EWC keeps, per past task, a copy of the weights and their importances (float32).
    assert [t["kept_bytes"] for t in ewc["tasks"]][:2] == [2 * params, 4 * params]


def test_same_spec_and_seed_give_the_same_accuracy_matrix():
    first = run(RunSpec("split-digits", "naive", seed=3, overrides=QUICK))
    second = run(RunSpec("split-digits", "naive", seed=3, overrides=QUICK))
    other = run(RunSpec("split-digits", "naive", seed=4, overrides=QUICK))
    assert first["accuracy_matrix"] == second["accuracy_matrix"]
    assert first["name"] == second["name"] != other["name"]


def test_result_records_the_resolved_spec_and_environment():
    result = run(RunSpec("split-digits", "naive", overrides={"protocol": {"epochs": "2"}}))
    spec = result["spec"]
    assert spec["protocol"]["epochs"] == 2 and spec["protocol"]["lr"] == 0.05  # preset value
    assert spec["model"] == "mlp" and spec["strategy_params"] == {}
    assert result["environment"]["versions"]["avalanche-lib"] == "0.6.0"
    assert set(result["metrics"]) == {
        "acc",
        "bwt",
        "forgetting",
        "learning_accuracy",
        "average_incremental_accuracy",
    }
    assert all(task["train_seconds"] > 0 for task in result["tasks"])


@dataclass
class FreezeParams:
    keep_first_layer: bool = True


class CountSteps(SupervisedPlugin):  # any Avalanche plugin may be a strategy's
    def __init__(self):
        super().__init__()
        self.steps = 0

    def after_update(self, strategy, **kwargs):
        self.steps += 1


def test_an_in_process_strategy_with_a_model_transform(tmp_path, registered):
    plugin = CountSteps()

    def frozen_backbone(model: nn.Module, params: FreezeParams) -> StrategyBuild:
        """Freeze the backbone: only heads train."""
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        return StrategyBuild(plugins=[plugin], model=model)

    register_strategy("test-frozen", frozen_backbone)
    resolved = resolve(RunSpec("split-digits", "test-frozen"))
    assert resolved.strategy_params == FreezeParams()
    result = run(RunSpec("split-digits", "test-frozen", overrides=QUICK))
    head_params = 100 * 2 * 5  # five heads of 100 -> 2, all trainable
    assert result["tasks"][0]["trainable_params"] == head_params
    assert plugin.steps > 0


class ScriptedTemplate:
    """Each eval pass sets the recorder's accuracies to the next scripted row."""

    def __init__(self, recorder, rows):
        self.recorder, self.rows = recorder, iter(rows)

    def eval(self, stream, shuffle):
        assert shuffle  # every pass draws its own test order
        for task, accuracy in enumerate(next(self.rows)):
            self.recorder.correct[task], self.recorder.seen[task] = accuracy, 100


def test_each_accuracy_is_the_mean_over_the_evaluation_passes():
    recorder = AccuracyRecorder()
    template = ScriptedTemplate(recorder, [[50, 90], [60, 80], [70, 100]])
    assert evaluate(template, recorder, None, 2, passes=3) == [60.0, 90.0]
    one = ScriptedTemplate(recorder, [[37, 41]])
    assert evaluate(one, recorder, None, 2, passes=1) == [37.0, 41.0]


def test_a_run_with_eval_passes_evaluates_that_many_times(monkeypatch):
    """After every task, one pass over the test stream per `eval_passes`, each shuffled anew."""
    passes = []
    original = AccuracyRecorder.before_eval

    def counting(self, strategy, **kwargs):
        passes.append(len(strategy.experience.dataset) if strategy.experience else None)
        return original(self, strategy, **kwargs)

    monkeypatch.setattr(AccuracyRecorder, "before_eval", counting)
    overrides = {"protocol": {"epochs": "1", "eval_passes": "3"}}
    result = run(RunSpec("split-digits", "naive", overrides=overrides))
    assert len(passes) == 3 * 5
    assert result["spec"]["protocol"]["eval_passes"] == 3
