"""Data loaders that read a batch with one indexing operation instead of one sample at a time.

Avalanche's loaders fetch every sample through its dataset layers, and check the dataset tree for
FFCV support at every epoch (docs/performance.md measures both). Every dataset the harness builds
records where each of its samples comes from: two data attributes, the `ImageTensors` holding it
and its row there, which Avalanche carries through subsets, concatenations and transform groups
like task labels. `BatchedView` turns those into a dataset
whose `__getitems__` reads a batch of rows at once.

The loaders build Avalanche's samplers and `DataLoader` with Avalanche's arguments
(`BatchedFetch`), so the indices of every batch, and every number drawn from the global random
stream, are those of Avalanche's own loaders: the batches are identical, bit for bit
(tests/test_loading.py). A dataset without origins (a replay buffer, another source) is loaded
by Avalanche as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from avalanche.benchmarks.utils.data import AvalancheDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.data_loader import (
    MultiDatasetSampler,
    SingleDatasetDataLoader,
    TaskBalancedDataLoader,
)
from avalanche.benchmarks.utils.flat_data import ConstantSequence
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

SOURCE, ROW = "sample_source", "sample_row"
SAMPLER_KEYS = ("batch_size", "shuffle", "sampler", "drop_last", "collate_fn")


def with_sample_origin(dataset: AvalancheDataset, source: Dataset) -> AvalancheDataset:
    """`dataset` (built on `source`, sample i = source row i) with its samples' origins."""
    n = len(dataset)
    origins = [DataAttribute(ConstantSequence(source, n), SOURCE), DataAttribute(range(n), ROW)]
    return type(dataset)([dataset], data_attributes=origins)


def whole_batch(batch: list[Tensor]) -> list[Tensor]:
    """Collate function for a batch that `BatchedView` already assembled."""
    return batch


class BatchedView(Dataset):
    """The samples of datasets (concatenated, as `ConcatDataset` orders them), read a batch at a
    time from their sources; a batch is [x, y, task label] as Avalanche's collate makes it."""

    def __init__(self, sources: list[Any], source_of: Tensor, rows: Tensor, tasks: Tensor) -> None:
        self.sources = sources
        self.source_of = source_of
        self.rows = rows
        self.tasks = tasks
        self.rows_are_positions = len(sources) == 1 and torch.equal(rows, torch.arange(len(rows)))

    @classmethod
    def of(cls, datasets: list[AvalancheDataset]) -> BatchedView | None:
        """The view of `datasets`, or None where a sample's origin is unknown or reading it in
        a batch would not give what the dataset gives (a transform added on top)."""
        sources: list[Any] = []
        position: dict[int, int] = {}  # id of a source -> its place in `sources`
        source_of, rows, tasks = [], [], []
        for dataset in datasets:
            if not all(hasattr(dataset, a) for a in (SOURCE, ROW, "targets_task_labels")):
                return None
            for source in getattr(dataset, SOURCE):
                if id(source) not in position:
                    position[id(source)] = len(sources)
                    sources.append(source)
                source_of.append(position[id(source)])
            rows.extend(getattr(dataset, ROW))
            tasks.extend(dataset.targets_task_labels)
        if not rows or not all(hasattr(s, "fetch") for s in sources):
            return None
        view = cls(sources, torch.tensor(source_of), torch.tensor(rows), torch.tensor(tasks))
        first = datasets[next(i for i, d in enumerate(datasets) if len(d))][0]
        if not all(torch.equal(torch.as_tensor(a), b) for a, b in zip(first, view[0], strict=True)):
            return None
        return view

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> list[Tensor]:
        """One sample (as `dataset[index]` gives it, with tensors for the labels)."""
        x, y, t = self.__getitems__([index])
        return [x[0], y[0], t[0]]

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        rows = index if self.rows_are_positions else self.rows.index_select(0, index)
        if len(self.sources) == 1:
            x, y = self.sources[0].fetch(rows)
        else:  # samples of several sources (a cumulative dataset): read each, then restore order
            which = self.source_of[index]
            parts = [(int(s), (which == s).nonzero().squeeze(1)) for s in which.unique()]
            read = [self.sources[s].fetch(rows[at]) for s, at in parts]
            order = torch.cat([at for _, at in parts]).argsort()
            x = torch.cat([r[0] for r in read])[order]
            y = torch.cat([r[1] for r in read])[order]
        return [x, y, self.tasks.index_select(0, index)]


class BatchedFetch:
    """Mixed into an Avalanche multi-dataset loader: each epoch builds Avalanche's samplers
    exactly as its `_get_loader` does, then a PyTorch loader reading through a `BatchedView`
    (instead of checking the dataset tree for FFCV support at every epoch and fetching per sample;
    docs/performance.md); datasets without origins go to Avalanche's `_get_loader`."""

    # What the mixin reads of the Avalanche loader it is mixed into.
    datasets: list[Any]
    batch_sizes: Any
    distributed_sampling: bool
    loader_kwargs: dict[str, Any]
    termination_dataset: int
    oversample_small_datasets: bool
    never_ending: bool
    _create_samplers: Callable[..., Any]

    def _get_loader(self) -> DataLoader:
        if not hasattr(self, "_view"):
            self._view = BatchedView.of(self.datasets)
        if self._view is None:
            return super()._get_loader()  # type: ignore[misc]  # the Avalanche loader's, after the mixin
        samplers = self._create_samplers(
            self.datasets, self.batch_sizes, self.distributed_sampling, self.loader_kwargs
        )
        batch_sampler = MultiDatasetSampler(
            self.datasets,
            samplers,
            termination_dataset_idx=self.termination_dataset,
            oversample_small_datasets=self.oversample_small_datasets,
            never_ending=self.never_ending,
        )
        args = {k: v for k, v in self.loader_kwargs.items() if k not in SAMPLER_KEYS}
        return DataLoader(self._view, batch_sampler=batch_sampler, collate_fn=whole_batch, **args)


class BatchedTaskBalancedLoader(BatchedFetch, TaskBalancedDataLoader):
    """Avalanche's task-balanced training loader, reading batches at once."""


class BatchedSingleLoader(BatchedFetch, SingleDatasetDataLoader):
    """Avalanche's evaluation loader, reading batches at once."""


def sequential_loader(datasets: list[AvalancheDataset], batch_size: int) -> DataLoader:
    """The samples of `datasets` in order, in batches (the validation loss's loader)."""
    view = BatchedView.of(datasets)
    if view is None:
        return DataLoader(ConcatDataset(datasets), batch_size=batch_size, shuffle=False)
    return DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=whole_batch)
