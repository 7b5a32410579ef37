"""Bytes a strategy keeps between tasks.

A `StrategyPlugin` names what it keeps (`kept()`): tensors count their elements times their size,
datasets their samples times one sample's size. Any other plugin (Avalanche's own) has its
attributes walked: tensors count their storage once (shared storage is not double counted),
modules their parameters and buffers, containers and plain objects recursively, and stored
Avalanche datasets (replay buffers) as their number of samples times the size of one sample.
Data loaders and
iterators are views of data counted elsewhere and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from clbench.strategies.contract import StrategyPlugin


def dataset_bytes(dataset: Dataset) -> int:
    """Bytes of a stored dataset: its length times the size of one sample's tensors."""
    sized = cast(Sized, dataset)  # torch's Dataset declares no __len__; stored ones have one
    if len(sized) == 0:
        return 0
    first = dataset[0]
    parts = first if isinstance(first, tuple | list) else (first,)
    per_sample = sum(p.numel() * p.element_size() for p in parts if isinstance(p, torch.Tensor))
    per_sample += 8 * sum(1 for p in parts if isinstance(p, int))
    return per_sample * len(sized)


class _Counter:
    def __init__(self) -> None:
        from avalanche.benchmarks.utils import AvalancheDataset  # counted when training only

        self.stored_datasets = AvalancheDataset
        self.storages: set[tuple[str, int]] = set()
        self.visited: set[int] = set()
        self.total = 0

    def tensor(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr())
        if key not in self.storages:
            self.storages.add(key)
            self.total += storage.nbytes()

    def visit(self, obj: object) -> None:
        if id(obj) in self.visited or obj is None or isinstance(obj, str | bytes | int | float):
            return
        self.visited.add(id(obj))
        if isinstance(obj, torch.Tensor):
            self.tensor(obj)
        elif isinstance(obj, nn.Module):
            for t in [*obj.parameters(), *obj.buffers()]:
                self.tensor(t)
        elif isinstance(obj, self.stored_datasets):
            self.total += dataset_bytes(obj)
        elif isinstance(obj, DataLoader | Iterator):
            return
        elif isinstance(obj, dict):
            self.visit_all(obj.values())
        elif isinstance(obj, list | tuple | set):
            self.visit_all(obj)
        elif hasattr(obj, "__dict__"):
            self.visit_all(vars(obj).values())

    def visit_all(self, items: Iterable[object]) -> None:
        for item in items:
            self.visit(item)


def kept_bytes(plugins: Iterable[object]) -> int:
    """Total bytes held by `plugins` (see module docstring)."""
    counter = _Counter()
    total = 0
    for plugin in plugins:
        if isinstance(plugin, StrategyPlugin):
            for item in plugin.kept():
                if isinstance(item, torch.Tensor):
                    total += item.numel() * item.element_size()
                else:
                    total += dataset_bytes(item)
        else:
            counter.visit(plugin)
    return total + counter.total
