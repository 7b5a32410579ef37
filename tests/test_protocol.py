"""The training protocol (clbench.protocol), the per-task schedule (clbench.schedule) and the
optimizer the template builds for every task (clbench.template.task_optimizer)."""

from types import SimpleNamespace

import pytest
import torch

from clbench import schedule as schedule_module
from clbench.errors import ConfigError
from clbench.protocol import ProtocolParams, make_optimizer
from clbench.schedule import ValidationSchedule
from clbench.template import task_optimizer


class FakeStrategy:
    """Just what the schedule and the task optimizer touch: a model, an optimizer, a device, the
    plugins and stop_training()."""

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
    """Run a task whose epochs have the validation losses `losses`: its optimizer built as the
    template builds it at the task's start, then the epochs; the weight records the epoch
    number."""
    scripted = iter(losses)
    monkeypatch.setattr(schedule_module, "validation_loss", lambda *a: next(scripted))
    strategy.optimizer, strategy.trainable_params = task_optimizer(
        strategy.model, strategy.plugins, schedule.params
    )
    lrs = []
    for epoch in range(len(losses)):
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
    optimizers = []
    for task in range(2):
        schedule.start_task(task, [])
        drive(schedule, strategy, [1.0], monkeypatch)
        groups = strategy.optimizer.param_groups
        assert groups[0]["lr"] == 0.3 and groups[0]["momentum"] == 0.0
        assert [p.shape for p in groups[0]["params"]] == [torch.Size([2, 3])]
        assert strategy.trainable_params == 6
        optimizers.append(strategy.optimizer)
    assert optimizers[0] is not optimizers[1]


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


def test_the_fixed_schedule_keeps_the_rate_and_runs_every_epoch(monkeypatch):
    params = ProtocolParams(epochs=6, lr=0.1, lr_min=0.05, patience=1, schedule="fixed")
    schedule, strategy = ValidationSchedule(params), FakeStrategy()
    schedule.start_task(0, [])
    # under `plateau` these losses would halve the rate at once and stop below lr_min
    lrs = drive(schedule, strategy, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], monkeypatch)
    assert lrs == [0.1] * 6 and not strategy.stopped and schedule.epochs_run == 6
    assert strategy.optimizer.param_groups[0]["lr"] == 0.1
    assert strategy.model.weight.unique().item() == 0.0  # restore = best, the default


def test_restore_last_keeps_the_last_epochs_weights(monkeypatch):
    params = ProtocolParams(epochs=4, patience=5, schedule="fixed", restore="last")
    schedule, strategy = ValidationSchedule(params), FakeStrategy()
    schedule.start_task(0, [])
    drive(schedule, strategy, [1.0, 2.0, 3.0, 4.0], monkeypatch)
    assert strategy.model.weight.unique().item() == 3.0  # the epoch-3 weights, not epoch 0's
    assert schedule.best_state is None  # no copies are made for a restore that never comes


def test_head_tensors_take_the_head_weight_decay():
    shared, head = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    params = ProtocolParams(optimizer="adam", weight_decay=0.1, head_weight_decay=0.0)
    optimizer = make_optimizer(params, [shared, head], lr=0.5, heads=[head])
    decays = {len(g["params"][0]): g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {2: 0.1, 3: 0.0}
    unset = make_optimizer(ProtocolParams(weight_decay=0.1), [shared, head], lr=0.5, heads=[head])
    assert [g["weight_decay"] for g in unset.param_groups] == [0.1]  # one group, as before


def test_the_task_optimizer_gives_the_heads_their_own_decay():
    net = torch.nn.Module()
    net.body = torch.nn.Linear(2, 2, bias=False)
    net.heads = torch.nn.ModuleList([torch.nn.Linear(2, 1, bias=False)])
    params = ProtocolParams(epochs=1, optimizer="adam", weight_decay=0.1, head_weight_decay=0.0)
    optimizer, _ = task_optimizer(net, [], params)
    decays = {g["params"][0].shape: g["weight_decay"] for g in optimizer.param_groups}
    assert decays == {torch.Size([2, 2]): 0.1, torch.Size([1, 2]): 0.0}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eval_passes", 0, "protocol.eval_passes=0 must be a whole number >= 1"),
        ("head_weight_decay", -1.0, "protocol.head_weight_decay=-1.0 must be >= 0"),
    ],
)
def test_new_protocol_values_are_checked(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ProtocolParams(**{field: value})
