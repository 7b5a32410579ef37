from types import SimpleNamespace

import pytest
import torch

from clbench import protocol
from clbench.errors import ConfigError
from clbench.protocol import ProtocolParams, ValidationSchedule, make_optimizer


class FakeStrategy:
    """Just what the schedule touches: a model, an optimizer, a device, the plugins and
    stop_training()."""

    def __init__(self):
        self.model = torch.nn.Linear(2, 1, bias=False)
        self.plugins = []
        self.device = torch.device("cpu")
        self.optimizer = None
        self.stopped = False
        self.clock = SimpleNamespace(train_epoch_iterations=0)

    def stop_training(self):
        self.stopped = True


def drive(schedule, strategy, losses, monkeypatch):
    """Run epochs whose validation losses are `losses`; the weight records the epoch number."""
    scripted = iter(losses)
    monkeypatch.setattr(protocol, "validation_loss", lambda *a: next(scripted))
    lrs = []
    for epoch in range(len(losses)):
        schedule.before_training_epoch(strategy)
        with torch.no_grad():
            next(strategy.model.parameters()).fill_(epoch)
        schedule.after_training_epoch(strategy)
        lrs.append(schedule.lr)
        if strategy.stopped:
            break
    return lrs


def test_lr_divided_after_patience_and_task_stops_below_lr_min(monkeypatch):
    params = ProtocolParams(epochs=50, lr=0.1, lr_min=0.01, patience=2, lr_factor=3)
    schedule, strategy = ValidationSchedule(params), FakeStrategy()
    schedule.start_task(0, [])
    # epoch 0 best (1.0); two bad epochs -> lr 0.1/3; two more -> 0.1/9 >= 0.01; two more -> stop
    lrs = drive(schedule, strategy, [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], monkeypatch)
    assert lrs == pytest.approx([0.1, 0.1, 0.1 / 3, 0.1 / 3, 0.1 / 9, 0.1 / 9, 0.1 / 27])
    assert strategy.stopped
    assert strategy.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 27)
    assert strategy.model.weight.unique().item() == 0.0  # best epoch's weights restored


def test_improvement_resets_patience_and_best_weights_are_restored_at_the_last_epoch(monkeypatch):
    params = ProtocolParams(epochs=5, lr=0.1, lr_min=1e-5, patience=2, lr_factor=2)
    schedule, strategy = ValidationSchedule(params), FakeStrategy()
    schedule.start_task(0, [])
    lrs = drive(schedule, strategy, [3.0, 4.0, 2.0, 5.0, 6.0], monkeypatch)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05])
    assert not strategy.stopped and schedule.epochs_run == 5
    assert strategy.model.weight.unique().item() == 2.0
    assert schedule.best_loss == 2.0


def test_fresh_optimizer_per_task_over_trainable_tensors_only(monkeypatch):
    schedule, strategy = ValidationSchedule(ProtocolParams(epochs=1, lr=0.3)), FakeStrategy()
    frozen = torch.nn.Linear(3, 3, bias=False).requires_grad_(False)
    strategy.model = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), frozen)
    for task in range(2):
        schedule.start_task(task, [])
        drive(schedule, strategy, [1.0], monkeypatch)
        groups = strategy.optimizer.param_groups
        assert groups[0]["lr"] == 0.3 and groups[0]["momentum"] == 0.0
        assert [p.shape for p in groups[0]["params"]] == [torch.Size([2, 3])]
        assert schedule.trainable_params == 6


@pytest.mark.parametrize("field", ["epochs", "patience", "batch_size"])
def test_protocol_values_are_checked(field):
    from clbench.errors import ConfigError

    with pytest.raises(ConfigError, match=f"protocol.{field}=0 must be"):
        ProtocolParams(**{field: 0})


def test_tensors_a_strategy_decays_itself_get_no_weight_decay_from_the_optimizer():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    params = ProtocolParams(momentum=0.9, weight_decay=0.1)
    optimizer = make_optimizer(params, [a, b], lr=0.5, decayed_elsewhere=[b])
    decays = {len(g["params"][0]): g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {2: 0.1, 3: 0.0}
    adam = make_optimizer(ProtocolParams(optimizer="adam", weight_decay=0.1), [a], lr=0.5)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ConfigError, match="Adam has no momentum setting"):
        ProtocolParams(optimizer="adam", momentum=0.9)
