"""The harness's training template (clbench.template) trains exactly as Avalanche's
`SupervisedTemplate` does, with less work per step."""

import copy

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from synthetic import scenario

from clbench.models import ModelParams, build_model
from clbench.protocol import ProtocolParams
from clbench.template import HarnessTemplate, defined_hooks


class Penalty(SupervisedPlugin):
    """Adds terms to the loss the two ways plugins do: before the forward (onto the empty loss)
    and in place before backward (Avalanche's EWC style); records the hooks it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def before_forward(self, strategy, **kwargs):
        strategy.loss += 0.01 * sum(p.abs().sum() for p in strategy.model.parameters())
        self.seen.append("before_forward")

    def before_backward(self, strategy, **kwargs):
        strategy.loss += 0.1 * sum((p**2).sum() for p in strategy.model.parameters())
        self.seen.append("before_backward")

    def after_training_iteration(self, strategy, **kwargs):
        self.seen.append("after_training_iteration")


def trained(template_type, model, plugin, **extra):
    """`model` trained on three tasks, with a fresh optimizer state for each (the harness builds a
    new optimizer per task from its protocol; Avalanche is told to reset the one it is given)."""
    bench = scenario()
    template = template_type(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=4,
        train_epochs=2,
        eval_mb_size=8,
        plugins=[plugin],
        **extra,
    )
    torch.manual_seed(11)
    for experience in bench.train_stream:
        template.train(experience, reset_optimizer_state=True)
    return model


def test_training_equals_avalanche_template_bit_for_bit():
    model = build_model("mlp", (2, 3, 3), 3, 3, ModelParams())
    ours, theirs = Penalty(), Penalty()
    protocol = ProtocolParams(lr=0.05, momentum=0.9)  # the optimizer Avalanche's is given
    harness = trained(
        HarnessTemplate, copy.deepcopy(model), ours, evaluator=None, protocol=protocol
    )
    avalanche = trained(SupervisedTemplate, copy.deepcopy(model), theirs)
    for a, b in zip(harness.parameters(), avalanche.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ours.seen == theirs.seen and len(ours.seen) > 30
    assert not torch.equal(next(model.parameters()), next(harness.parameters()))  # it trained


def test_only_defined_hooks_are_called_in_plugin_order():
    class Second(SupervisedPlugin):
        def before_backward(self, strategy, **kwargs):
            pass

    first, second = Penalty(), Second()
    hooks = defined_hooks([first, second, SupervisedPlugin()], "before_backward")
    assert [h.__self__ for h in hooks] == [first, second]
    assert defined_hooks([second], "after_update") == []
