"""Multi-head wrapper: a shared backbone and one linear head per task (docs/methods.md,
protocol)."""

from __future__ import annotations

import torch
from avalanche.models import MultiTaskModule
from torch import Tensor, nn


class MultiHeadNet(MultiTaskModule):
    """`backbone(x)` gives features; head k (no bias) classifies task k's samples.

    With a single head every sample uses it, whatever its task label (single-head protocols such
    as PMNIST). Heads live in `self.heads`; the representation utilities exclude them by that name.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, n_heads: int, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleList(
            nn.Linear(feature_dim, n_classes, bias=False) for _ in range(n_heads)
        )
        self.n_classes = n_classes

    def shared_modules(self) -> nn.ModuleDict:
        """What every task uses: the backbone, and the head when there is only one."""
        shared = {"backbone": self.backbone}
        if len(self.heads) == 1:
            shared["head"] = self.heads[0]
        return nn.ModuleDict(shared)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        head = self.heads[0] if len(self.heads) == 1 else self.heads[task_label]
        return head(self.backbone(x))

    def forward_all_tasks(self, x: Tensor) -> dict[int, Tensor]:
        """Outputs of every head trained so far (one shared head: just it, under task label 0)."""
        features = self.backbone(x)
        if len(self.heads) == 1:
            return {0: self.heads[0](features)}
        return {t: self.heads[t](features) for t in sorted(self.known_train_tasks_labels)}

    def forward(self, x: Tensor, task_labels: Tensor | int | None) -> Tensor | dict[int, Tensor]:
        """Per-sample head by task label; `None` gives every trained head's output (Avalanche's
        convention, used by LwF's distillation)."""
        if task_labels is None:
            return self.forward_all_tasks(x)
        if isinstance(task_labels, int) or len(self.heads) == 1:
            task = task_labels if isinstance(task_labels, int) else 0
            return self.forward_single_task(x, task)
        features = self.backbone(x)
        out = features.new_zeros(x.shape[0], self.n_classes)
        for task in torch.unique(task_labels).tolist():
            mask = task_labels == task
            out[mask] = self.heads[task](features[mask])
        return out
