"""Past tasks' gradient directions per shared tensor: the reference that this project's two
readings of the update-magnitude paper compare new gradients with (docs/methods.md, "Parameter-
update magnitude")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from clbench.strategies.task_data import task_loss_backward

if TYPE_CHECKING:  # the model class imports Avalanche, which listing strategies does not
    from clbench.models.heads import MultiHeadNet


def shared_parameters(model: MultiHeadNet) -> dict[str, nn.Parameter]:
    """Every parameter but the task heads (a single head is shared by all tasks)."""
    return dict(model.shared_modules().named_parameters())


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """cos(a, b) of two tensors taken as vectors; 0 where either is zero."""
    norms = a.norm() * b.norm()
    return (a.flatten() @ b.flatten()) / norms if norms > 0 else a.new_zeros(())


class PastDirections:
    """After every finished task, each shared tensor's reference grows by the unit mean gradient
    of that task's loss on `samples` of its training samples (eval mode), drawn with a generator
    of its own so that the run's global random stream is untouched."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.generator = torch.Generator().manual_seed(torch.initial_seed())
        self.reference: dict[str, Tensor] = {}

    def add_finished_task(self, strategy) -> None:
        model = strategy.model
        task_loss_backward(strategy, self.samples, self.generator)
        for name, p in shared_parameters(model).items():
            if p.grad is not None and p.grad.norm() > 0:
                unit = p.grad.detach() / p.grad.norm()
                self.reference[name] = self.reference.get(name, torch.zeros_like(unit)) + unit
        model.zero_grad()
