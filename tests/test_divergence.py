"""A diverging run stops at the step where its loss or weights blow up, with one line naming the
task, epoch and step, and leaves a failure record instead of a result (`clbench.divergence`)."""

import json
import re
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from avalanche.core import SupervisedPlugin

from clbench.cli import main
from clbench.divergence import LOSS_CEILING, DivergenceWatch
from clbench.strategies import StrategyBuild, register_strategy

WHERE = r"at task (\d+), epoch (\d+), step (\d+) \(counted from 1\)"


def run_cli(tmp_path, strategy: str, *assignments: str) -> int:
    argv = ["run", "--benchmark", "split-digits", "--strategy", strategy, "--quiet"]
    argv += ["--results", str(tmp_path), "--set", "protocol.epochs=1"]
    for assignment in assignments:
        argv += ["--set", assignment]
    return main(argv)


def failure(tmp_path, capsys) -> tuple[str, dict]:
    """The one line the CLI printed (without its prefix) and the failure record, the only file
    the run left."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("clbench: error: ")
    (path,) = tmp_path.iterdir()
    record = json.loads(path.read_text())
    assert path.name == f"{record['name']}.failed.json"
    return lines[0].removeprefix("clbench: error: "), record


@pytest.mark.parametrize(
    "strategy, lr",
    [
        ("naive", "protocol.lr=1e3"),
        ("gpm", "protocol.lr=1e3"),
        ("ness", "protocol.lr=1e3"),
        ("adam-nscl", "adam-nscl.protocol.lr=1e3"),  # Adam-NSCL trains at its own rate
    ],
)
def test_a_diverging_run_stops_at_the_step_and_records_why(tmp_path, capsys, strategy, lr):
    assert run_cli(tmp_path, strategy, lr) == 2
    message, record = failure(tmp_path, capsys)
    # The loss passes the ceiling within three steps, finite: naive's and GPM's weights' norm
    # overflows float32 a step later, NESS's and Adam-NSCL's never does.
    found = re.fullmatch(rf"loss (\S+) above 1e\+06 {WHERE}: the run diverged \(.*\)", message)
    assert found, message
    assert float(found[1]) > LOSS_CEILING
    assert found.group(2, 3) == ("1", "1") and int(found[4]) <= 3
    assert record["error"] == f"TrainingDiverged: {message}"


@dataclass
class BlowUpParams:
    when: Literal["epoch-end", "task-end"] = "epoch-end"


class BlowUp(SupervisedPlugin):
    """Scales the first weight by 1e30 at the end of task 1's first epoch, or once task 1 has
    trained, as a strategy that rewrites the weights there might: the weights stay finite, their
    norm does not, and no later step's loss sees them before the check."""

    def __init__(self, when: str) -> None:
        super().__init__()
        self.when = when

    def _scale(self, strategy) -> None:
        if strategy.clock.train_exp_counter == 0:
            with torch.no_grad():
                next(strategy.model.parameters()).mul_(1e30)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        if self.when == "epoch-end":
            self._scale(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.when == "task-end":
            self._scale(strategy)


def blow_up(model: torch.nn.Module, params: BlowUpParams) -> StrategyBuild:
    """Test strategy: a plugin that scales the weights past float32's range."""
    return StrategyBuild(plugins=[BlowUp(params.when)])


@pytest.fixture
def blowing_up(registered):
    register_strategy("test-blow-up", blow_up)
    return "test-blow-up"


def test_weights_whose_norm_overflows_stop_the_run_at_the_epoch_end(tmp_path, capsys, blowing_up):
    assert run_cli(tmp_path, blowing_up) == 2
    message, record = failure(tmp_path, capsys)
    found = re.match(
        rf"non-finite norm of the weights \(inf\) after the epoch's last step, {WHERE}", message
    )
    assert found, message
    assert found.group(1, 2) == ("1", "1") and int(found[3]) > 1
    assert record["error"] == f"TrainingDiverged: {message}"


def test_a_non_finite_parameter_distance_stops_the_run_at_the_task_end(
    tmp_path, capsys, blowing_up
):
    assert run_cli(tmp_path, blowing_up, "test-blow-up.when=task-end") == 2
    message, record = failure(tmp_path, capsys)
    assert message.startswith(
        "non-finite parameter distance (inf) at the end of task 1, epoch 1, after its last step"
    )
    assert record["error"] == f"TrainingDiverged: {message}"


class Clock:
    train_exp_counter = train_exp_epochs = train_epoch_iterations = 0


class Step:
    """What the watch reads of a training step: its loss, model, optimizer and clock."""

    def __init__(self, loss: float, model: torch.nn.Module) -> None:
        self.loss, self.model, self.clock = torch.tensor(loss), model, Clock()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def test_the_watch_lets_a_training_run_through_up_to_the_ceiling():
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.fill_(1e18)  # norm 3.5e18: large, finite
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    watch = DivergenceWatch()
    for loss in (0.0, 2.3, LOSS_CEILING):
        watch.before_backward(Step(loss, model))
    watch.after_training_epoch(Step(2.3, model))
    assert all(torch.equal(model.state_dict()[name], t) for name, t in before.items())
