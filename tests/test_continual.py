"""Continual evaluation (`protocol.eval_every`, clbench.continual) on real offline data: what it
records is what the model scores at those iterations, and it leaves training as it was."""

import copy

import pytest
import torch
from avalanche.core import SupervisedPlugin

from clbench.continual import evaluation_subsets
from clbench.errors import ConfigError
from clbench.evaluation import initial_accuracies
from clbench.metrics import Curve
from clbench.protocol import ProtocolParams
from clbench.resolution import RunSpec, resolve
from clbench.runner import prepare, run, train_sequence

QUICK = {"epochs": 1}  # split-mnist5k: five tasks of 23 iterations


class StateEvery(SupervisedPlugin):
    """Keeps a copy of the model's tensors every `every` training iterations."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.iteration, self.states = every, 0, {}

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.iteration += 1
        if self.iteration % self.every == 0:
            self.states[self.iteration] = copy.deepcopy(strategy.model.state_dict())


@pytest.mark.slow
def test_the_recorded_curve_equals_a_separate_evaluation_of_saved_checkpoints(tmp_path):
    """Each row of the curve is the accuracy of the model saved at that iteration (every 5
    iterations during training, the task checkpoints at task ends), measured again outside the
    template on the same seeded subset."""
    protocol = {**QUICK, "eval_every": 5, "eval_samples": 60}
    spec = RunSpec("split-mnist5k", "naive", seed=1, overrides={"protocol": protocol})
    prepared = prepare(resolve(spec))
    saver = StateEvery(5)
    prepared.template.plugins.append(saver)
    train_sequence(prepared, lambda line: None, tmp_path)
    assert prepared.continual is not None
    curve = Curve.of(prepared.continual.record("test"))
    states = dict(saver.states)
    for task, end in enumerate(curve.task_ends, start=1):
        states[end] = torch.load(tmp_path / f"task{task}.pt", weights_only=True)["state_dict"]

    fresh = prepare(resolve(RunSpec("split-mnist5k", "naive", seed=1)))
    subsets = evaluation_subsets(fresh.scenario.test_stream, 60, seed=1)
    assert all(len(subset.dataset) == 60 for subset in subsets)
    model = fresh.template.model
    rows = list(zip(curve.iteration, curve.task, curve.accuracy, strict=True))
    checked = 0
    for iteration in sorted({row[0] for row in rows}):
        recorded = {task: accuracy for i, task, accuracy in rows if i == iteration}
        model.load_state_dict(states[iteration])
        tasks = max(recorded)
        again = initial_accuracies(model, [s.dataset for s in subsets[:tasks]], 64)
        assert recorded == pytest.approx(dict(enumerate(again, start=1)), abs=1e-9), iteration
        checked += 1
    assert checked == len(set(saver.states) | set(curve.task_ends)) > 25


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["trgp", "replay"])
def test_continual_evaluation_leaves_the_accuracy_matrix_bit_identical(strategy):
    """TRGP switches its per-task scales in evaluation hooks, replay swaps the training data
    loader: evaluating every 3 iterations changes neither the matrix nor the task records, and
    the curve at each task's end (subsets as large as the test sets) is the matrix's row."""
    off = run(RunSpec("split-mnist5k", strategy, overrides={"protocol": QUICK}))
    protocol = {**QUICK, "eval_every": 3, "eval_samples": 100_000}
    on = run(RunSpec("split-mnist5k", strategy, overrides={"protocol": protocol}))
    assert on["accuracy_matrix"] == off["accuracy_matrix"]

    def steady(tasks):
        return [{k: v for k, v in t.items() if not k.endswith("_seconds")} for t in tasks]

    assert steady(on["tasks"]) == steady(off["tasks"])
    assert "continual" not in off and "min_acc" not in off["metrics"]
    record = on["continual"]
    keys = zip(record["iteration"], record["task"], strict=True)
    at = dict(zip(keys, record["accuracy"], strict=True))
    for t, row in enumerate(on["accuracy_matrix"]):
        end = record["task_ends"][t]
        assert [at[(end, j)] for j in range(1, t + 2)] == row[: t + 1]
    assert set(on["metrics"]) >= {"min_acc", "wc_acc", "windowed_forgetting", "stability_gap"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eval_every", -1, r"protocol.eval_every=-1 must be a whole number >= 0 \(0: off\)"),
        ("eval_samples", 0, r"protocol.eval_samples=0 must be a whole number >= 1"),
    ],
)
def test_bad_continual_settings_are_refused_in_one_line(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ProtocolParams(**{field: value})
