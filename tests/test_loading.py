"""Batched data loading (clbench.data.loading): the same batches as Avalanche's loaders, bit for
bit, with the same draws from the global random stream."""

import torch
from avalanche.benchmarks.utils import _make_taskaware_classification_dataset
from avalanche.benchmarks.utils.data_loader import SingleDatasetDataLoader, TaskBalancedDataLoader
from synthetic import scenario
from torch.utils.data import ConcatDataset, DataLoader

from clbench.data.benchmark import ImageTensors, TaskData
from clbench.data.loading import (
    BatchedSingleLoader,
    BatchedTaskBalancedLoader,
    BatchedView,
    sequential_loader,
)


def epochs_of(loader, seed: int, epochs: int = 2):
    """Every batch of `epochs` epochs after seeding, and the global RNG state afterwards."""
    torch.manual_seed(seed)
    batches = [[t.clone() for t in batch] for _ in range(epochs) for batch in loader]
    return batches, torch.get_rng_state()


def assert_same_batches(ours, theirs) -> None:
    (ours, our_state), (theirs, their_state) = ours, theirs
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert len(a) == len(b) == 3
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype and torch.equal(x, y)
    assert torch.equal(our_state, their_state)  # the same numbers drawn from the global stream


def test_training_loader_matches_avalanche_bit_for_bit():
    data = scenario().train_stream[1].dataset.train()
    args = {"batch_size": 4, "shuffle": True, "oversample_small_groups": True}
    assert_same_batches(
        epochs_of(BatchedTaskBalancedLoader(data, **args), seed=5),
        epochs_of(TaskBalancedDataLoader(data, **args), seed=5),
    )


def test_cumulative_training_loader_balances_tasks_as_avalanche_does():
    data = scenario(cumulative=True).train_stream[2].dataset.train()  # tasks 0, 1, 2 joined
    args = {"batch_size": 6, "shuffle": True, "oversample_small_groups": True}
    ours = epochs_of(BatchedTaskBalancedLoader(data, **args), seed=1)
    assert_same_batches(ours, epochs_of(TaskBalancedDataLoader(data, **args), seed=1))
    assert {int(t) for batch in ours[0] for t in batch[2]} == {0, 1, 2}


def test_evaluation_and_validation_loaders_match():
    bench = scenario()
    test_data = bench.test_stream[2].dataset.eval()
    args = {"batch_size": 5, "shuffle": True}
    assert_same_batches(
        epochs_of(BatchedSingleLoader(test_data, **args), seed=2),
        epochs_of(SingleDatasetDataLoader(test_data, **args), seed=2),
    )
    valid = [bench.valid_stream[k].dataset for k in range(3)]
    assert_same_batches(
        epochs_of(sequential_loader(valid, 4), seed=0, epochs=1),
        epochs_of(DataLoader(ConcatDataset(valid), batch_size=4), seed=0, epochs=1),
    )


def test_datasets_without_origins_or_with_a_transform_are_read_by_avalanche():
    data = scenario().train_stream[0].dataset
    assert BatchedView.of([data]) is not None
    shifted = data.replace_current_transform_group(lambda x: x + 1)
    assert BatchedView.of([shifted]) is None
    assert_same_batches(
        epochs_of(BatchedTaskBalancedLoader(shifted, batch_size=4, shuffle=True), seed=0),
        epochs_of(TaskBalancedDataLoader(shifted, batch_size=4, shuffle=True), seed=0),
    )
    task = TaskData("plain", torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), *([None] * 2))
    plain = _make_taskaware_classification_dataset(
        ImageTensors(task, task.x_train, task.y_train), task_labels=0
    )
    assert BatchedView.of([plain]) is None
