"""The training template every run uses: Avalanche's `SupervisedTemplate`, which builds each task's
optimizer, with less work per step.

The optimizer: a fresh one of the protocol's kind at the protocol's rate for every task, built
after every plugin's `before_training_exp`, over exactly the tensors that are trainable then
(`task_optimizer`: strategies add or freeze tensors at the task boundary), with the weight decay
that the strategy's plugins do not apply themselves (`StrategyPlugin.decay_exempt`). The number
of trainable parameters the result reports is counted there too (`StrategyPlugin.count_trainable`).

Changes to the loop, none of which alters what is computed (docs/performance.md measures each):
- Avalanche's evaluation and periodic-evaluation plugins are taken out of the plugin list: the
  harness records its own metrics and evaluates when a task ends (`runner.run`); the first copies
  the current experience at every callback of every iteration, the second has nothing to do
  (no `eval_every`) but is called every iteration.
- The forward always passes task labels (`avalanche_forward`): every experience the harness
  builds carries them, and Avalanche's check for them (`hasattr(experience, "task_labels")`)
  rebuilds the label list of the stream at every step.
- The eight callbacks of a training iteration call only the plugins that define the hook (a
  plugin inheriting Avalanche's empty default is skipped), in plugin order; the list is built
  when an experience starts.
- Data loaders read a batch with one indexing operation (`clbench.data.loading`), with
  Avalanche's samplers: the same batches, without Avalanche's per-sample fetch.
- A batch's tensors are moved to the device only where they are elsewhere (Avalanche calls
  `.to(device)` on each at every step).
- The training loop (`training_epoch`) is Avalanche's `SGDUpdate.training_epoch`, callback for
  callback, except that the loss starts as the criterion's value: Avalanche starts it as a new
  `zeros(1)` and adds the criterion to it, an allocation and an addition per step. Plugins still
  add their terms to `strategy.loss` in `before_backward` (or before the forward: the loss is
  then the number 0.0 until the criterion is added).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin, BaseSGDPlugin
from avalanche.models import avalanche_forward
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base_sgd import PeriodicEval
from torch import Tensor, nn

from clbench.data.loading import BatchedSingleLoader, BatchedTaskBalancedLoader
from clbench.protocol import ProtocolParams, make_optimizer
from clbench.strategies.contract import StrategyPlugin

ITERATION_EVENTS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)
NO_LOSS_YET = 0.0  # `strategy.loss` before the criterion; a plugin may add to it like a tensor


def defined_hooks(plugins: list, event: str) -> list[Callable]:
    """The bound `event` methods of `plugins` that do something: those that are not Avalanche's
    empty default, in plugin order."""
    default = getattr(BaseSGDPlugin, event)
    hooks = []
    for plugin in plugins:
        hook = getattr(plugin, event, None)
        if hook is not None and getattr(hook, "__func__", hook) is not default:
            hooks.append(hook)
    return hooks


def task_optimizer(
    model: nn.Module, plugins: Sequence[object], protocol: ProtocolParams
) -> tuple[torch.optim.Optimizer, int]:
    """The optimizer of a task over the model's trainable tensors, and the number of trainable
    parameters to report (module docstring)."""
    strategy_plugins = [p for p in plugins if isinstance(p, StrategyPlugin)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    counts = [c for p in strategy_plugins if (c := p.count_trainable(model)) is not None]
    exempt = [tensor for p in strategy_plugins for tensor in p.decay_exempt()]
    heads = [p for name, p in model.named_parameters() if name.startswith("heads.")]
    optimizer = make_optimizer(protocol, trainable, protocol.lr, exempt, heads)
    return optimizer, counts[0] if counts else sum(p.numel() for p in trainable)


class HarnessTemplate(SupervisedTemplate):
    """Avalanche's supervised template under a training protocol (module docstring)."""

    optimizer: torch.optim.Optimizer  # built per task by `_before_training_exp`
    mbatch: Sequence[Tensor]  # the current batch (x, y, task labels)

    def __init__(self, protocol: ProtocolParams, **kwargs) -> None:
        super().__init__(**kwargs)
        self.protocol = protocol
        self.plugins: list[BasePlugin] = [
            p for p in self.plugins if p is not self.evaluator and not isinstance(p, PeriodicEval)
        ]
        self._hooks: dict[str, list[Callable]] | None = None
        self.trainable_params = 0

    def make_optimizer(self, **kwargs) -> None:
        """Nothing before the plugins' `before_training_exp`: `_before_training_exp` builds it."""
        return None

    def make_train_dataloader(self, shuffle: bool = True, **kwargs) -> None:
        """Avalanche's task-balanced loader with its arguments (`make_train_dataloader` of
        `BaseSGDTemplate`), reading batches at once."""
        args = self._obtain_common_dataloader_parameters(
            batch_size=self.train_mb_size,
            num_workers=kwargs.get("num_workers", 0),
            shuffle=shuffle,
            pin_memory=kwargs.get("pin_memory"),
            persistent_workers=kwargs.get("persistent_workers", False),
            drop_last=kwargs.get("drop_last", False),
        )
        self.dataloader = BatchedTaskBalancedLoader(
            self.adapted_dataset, oversample_small_groups=True, **args
        )

    def make_eval_dataloader(self, shuffle: bool = False, **kwargs) -> None:
        """Avalanche's evaluation loader with its arguments, reading batches at once."""
        args = self._obtain_common_dataloader_parameters(
            batch_size=self.eval_mb_size,
            num_workers=kwargs.get("num_workers", 0),
            shuffle=shuffle,
            pin_memory=kwargs.get("pin_memory"),
            persistent_workers=kwargs.get("persistent_workers", False),
        )
        self.dataloader = BatchedSingleLoader(self.adapted_dataset, **args)

    def _unpack_minibatch(self) -> None:
        """Avalanche's: the batch as a list, each tensor on the device (moved only if elsewhere)."""
        batch = self.mbatch if isinstance(self.mbatch, list) else list(self.mbatch)
        for i, tensor in enumerate(batch):
            if tensor.device != self.device:
                batch[i] = tensor.to(self.device, non_blocking=True)
        self.mbatch = batch

    def forward(self):
        return avalanche_forward(self.model, self.mb_x, self.mb_task_id)

    def training_epoch(self, **kwargs) -> None:
        for batch in self.dataloader:
            if self._stop_training:
                break
            self.mbatch = batch
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self.optimizer.zero_grad()
            self.loss = NO_LOSS_YET
            self._before_forward(**kwargs)
            self.mb_output = self.forward()
            self._after_forward(**kwargs)
            criterion = self.criterion()
            self.loss = criterion if self.loss is NO_LOSS_YET else self.loss + criterion
            self._before_backward(**kwargs)
            self.backward()
            self._after_backward(**kwargs)
            self._before_update(**kwargs)
            self.optimizer_step()
            self._after_update(**kwargs)
            self._after_training_iteration(**kwargs)

    def _before_training_exp(self, **kwargs) -> None:
        self._hooks = None  # plugins may have been added since the last experience
        super()._before_training_exp(**kwargs)
        self.optimizer, self.trainable_params = task_optimizer(
            self.model, self.plugins, self.protocol
        )

    def _trigger(self, event: str, **kwargs) -> None:
        if self._hooks is None:
            self._hooks = {e: defined_hooks(self.plugins, e) for e in ITERATION_EVENTS}
        for hook in self._hooks[event]:
            hook(self, **kwargs)

    def _before_training_iteration(self, **kwargs) -> None:
        self._trigger("before_training_iteration", **kwargs)

    def _before_forward(self, **kwargs) -> None:
        self._trigger("before_forward", **kwargs)

    def _after_forward(self, **kwargs) -> None:
        self._trigger("after_forward", **kwargs)

    def _before_backward(self, **kwargs) -> None:
        self._trigger("before_backward", **kwargs)

    def _after_backward(self, **kwargs) -> None:
        self._trigger("after_backward", **kwargs)

    def _before_update(self, **kwargs) -> None:
        self._trigger("before_update", **kwargs)

    def _after_update(self, **kwargs) -> None:
        self._trigger("after_update", **kwargs)

    def _after_training_iteration(self, **kwargs) -> None:
        self._trigger("after_training_iteration", **kwargs)
