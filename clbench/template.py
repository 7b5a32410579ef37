"""The training template every run uses: Avalanche's `SupervisedTemplate` with less work per step.

Changes, none of which alters what is computed (`bench-overhead` measured each):
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
  `zeros(1)` and adds the criterion to it, an allocation and an addition per step (6% of a
  `naive` step on PMNIST, timed with and without them). Plugins still add their terms to
  `strategy.loss` in `before_backward` (or before the forward: the loss is then the number 0.0
  until the criterion is added).
"""

from __future__ import annotations

from collections.abc import Callable

from avalanche.core import BaseSGDPlugin
from avalanche.models import avalanche_forward
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base_sgd import PeriodicEval

from clbench.data.loading import BatchedSingleLoader, BatchedTaskBalancedLoader

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


class HarnessTemplate(SupervisedTemplate):
    """Avalanche's supervised template (module docstring); the optimizer is built per task by
    `ValidationSchedule`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.plugins = [
            p for p in self.plugins if p is not self.evaluator and not isinstance(p, PeriodicEval)
        ]
        self._hooks: dict[str, list[Callable]] | None = None

    def make_optimizer(self, **kwargs) -> None:
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
