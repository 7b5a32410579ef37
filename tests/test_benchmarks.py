from pathlib import Path

import numpy as np
import pytest
import torch
from ondisk import (
    write_cifar10,
    write_cifar100,
    write_miniimagenet,
    write_mnist_like,
    write_notmnist,
    write_svhn,
)

from clbench.data import BENCHMARKS, DataOptions
from clbench.data.benchmark import pixel_permutations, split_validation, to_scenario
from clbench.data.paper import miniimagenet_classes
from clbench.errors import MissingDataError


def build(name: str, root: Path = Path("unused"), seed: int = 0):
    return BENCHMARKS.get(name).build(DataOptions(root=root, download=False, seed=seed))


@pytest.mark.parametrize(
    ("name", "n_tasks", "shape", "classes", "multi_head", "n_total"),
    [
        ("split-digits", 5, (1, 8, 8), 2, True, 1797),
        ("split-mnist5k", 5, (1, 28, 28), 2, True, 5000),
        ("pmnist5k", 10, (784,), 10, False, 5000 * 10),
    ],
)
@pytest.mark.slow
def test_offline_benchmarks(name, n_tasks, shape, classes, multi_head, n_total):
    sequence = build(name)
    assert len(sequence.tasks) == n_tasks
    assert sequence.input_shape == shape
    assert sequence.classes_per_task == classes and sequence.multi_head == multi_head
    sizes = sum(len(t.y_train) + len(t.y_test) for t in sequence.tasks)
    assert sizes == n_total
    for task in sequence.tasks:
        for y in (task.y_train, task.y_test):
            assert set(y.tolist()) == set(range(classes))


def test_split_tasks_hold_consecutive_class_pairs():
    from sklearn.datasets import load_digits

    digits = load_digits()
    sequence = build("split-digits")
    for k, task in enumerate(sequence.tasks):
        expected = sum(int((digits.target == c).sum()) for c in (2 * k, 2 * k + 1))
        assert len(task.y_train) + len(task.y_test) == expected
    # An image of task 1 with label 1 is a "3": find it among the original digits.
    task = sequence.tasks[1]
    image = task.x_train[task.y_train == 1][0].numpy().reshape(64) * 16
    matches = (abs(digits.data - image).sum(1) < 1e-6).nonzero()[0]
    assert len(matches) >= 1 and digits.target[matches[0]] == 3


@pytest.mark.slow
def test_permutations_differ_per_task_and_follow_the_seed():
    a, b = build("pmnist5k", seed=0), build("pmnist5k", seed=1)
    x0, x1 = a.tasks[0].x_train, a.tasks[1].x_train
    assert not torch.equal(x0, x1)
    # same pixels, other order: the per-image sorted values agree
    assert torch.equal(x0.sort(1).values, x1.sort(1).values)
    assert any(not torch.equal(p.x_train, q.x_train) for p, q in zip(a.tasks, b.tasks, strict=True))
    assert torch.equal(a.tasks[3].x_train, build("pmnist5k", seed=0).tasks[3].x_train)


@pytest.mark.parametrize("seed", [0, 2, 7])
def test_reference_permutations_are_those_of_the_pmnist_loaders(seed):
    """GPM's PMNIST loader: the task seeds 0..9 shuffled by scikit-learn with the run's seed, the
    pixels of task i with seed task_seed * 100 + i (sahagobinda/GPM dataloader/pmnist.py:16-43)."""
    from sklearn.utils import shuffle

    task_seeds = shuffle(np.arange(10), random_state=seed)
    expected = [shuffle(np.arange(784), random_state=r * 100 + i) for i, r in enumerate(task_seeds)]
    found = pixel_permutations(784, 10, seed, "reference")
    assert [p.tolist() for p in found] == [e.tolist() for e in expected]
    torch_order = pixel_permutations(784, 10, seed, "torch")
    generator = torch.Generator().manual_seed(seed)
    assert all(torch.equal(p, torch.randperm(784, generator=generator)) for p in torch_order)


def test_reference_miniimagenet_classes_give_the_papers_first_task_with_seed_37():
    """With the papers' seed 37 the reference loaders' first task holds classes 61, 49, 86, 78,
    5 (LYang-666/TRGP main_mini_dataset.py:350 checks that name); every class once."""
    groups = miniimagenet_classes(37, "reference")
    assert groups[0] == [61, 49, 86, 78, 5] and groups[1] == [91, 81, 82, 89, 18]
    assert sorted(c for g in groups for c in g) == list(range(100))
    assert len(groups) == 20 and all(len(g) == 5 for g in groups)
    assert miniimagenet_classes(37, "torch")[0] != groups[0]


def test_scenario_streams_carry_task_labels_and_a_disjoint_validation_split():
    sequence = build("split-digits")
    scenario = to_scenario(sequence, pc_valid=0.1, seed=0)
    for stream in (scenario.train_stream, scenario.valid_stream, scenario.test_stream):
        assert [exp.task_label for exp in stream] == list(range(5))
    for k, task in enumerate(sequence.tasks):
        n_train = len(scenario.train_stream[k].dataset)
        n_valid = len(scenario.valid_stream[k].dataset)
        assert n_train + n_valid == len(task.y_train)
        assert n_valid == round(0.1 * len(task.y_train))
    x, y, t = scenario.train_stream[3].dataset[0]
    assert x.shape == (1, 8, 8) and t == 3 and y in (0, 1)
    train_idx, valid_idx = split_validation(100, 0.1, seed=5)
    assert set(train_idx.tolist()).isdisjoint(valid_idx.tolist())
    assert len(set(train_idx.tolist()) | set(valid_idx.tolist())) == 100


def test_cumulative_scenario_trains_on_the_union_of_tasks():
    sequence = build("split-digits")
    plain = to_scenario(sequence, 0.1, 0)
    joint = to_scenario(sequence, 0.1, 0, cumulative=True)
    for k in range(5):
        expected = sum(len(plain.train_stream[j].dataset) for j in range(k + 1))
        assert len(joint.train_stream[k].dataset) == expected
        assert sorted(joint.train_stream[k].task_labels) == list(range(k + 1))
        assert len(joint.test_stream[k].dataset) == len(plain.test_stream[k].dataset)


# --- paper benchmarks, from small files in the real on-disk formats ---------------------------


def test_cifar100_10_from_files(tmp_path):
    write_cifar100(tmp_path, per_class=2)
    sequence = build("cifar100-10", tmp_path)
    assert len(sequence.tasks) == 10 and sequence.input_shape == (3, 32, 32)
    for task in sequence.tasks:
        assert sorted(task.y_train.tolist()) == sorted(list(range(10)) * 2)
    scenario = to_scenario(sequence, 0.05, 0)
    x, _, _ = scenario.test_stream[0].dataset[0]
    # uint8 red channel of image 0 is 255: normalised with the CIFAR mean/std
    assert x[0, 0, 0].item() == pytest.approx((1.0 - 125.3 / 255) / (63.0 / 255), rel=1e-5)


def test_five_datasets_from_files(tmp_path):
    write_cifar10(tmp_path, per_class=1)
    write_mnist_like(tmp_path, "MNIST", per_class=1)
    write_svhn(tmp_path, per_class=1)
    write_mnist_like(tmp_path, "FashionMNIST", per_class=1)
    write_notmnist(tmp_path, per_class=1)
    sequence = build("five-datasets", tmp_path)
    assert [t.name for t in sequence.tasks] == [
        "cifar10",
        "mnist",
        "svhn",
        "fashion-mnist",
        "notmnist",
    ]
    for task in sequence.tasks:
        assert tuple(task.x_train.shape[1:]) == (3, 32, 32)
        assert sorted(set(task.y_test.tolist())) == list(range(10))
    mnist = sequence.tasks[1].x_train
    assert (mnist[:, :, :2, :] == 0).all() and (mnist[:, :, -2:, :] == 0).all()  # padded by 2
    assert torch.equal(mnist[:, 0], mnist[:, 2])  # grey repeated to three channels


def test_miniimagenet_20_from_files(tmp_path):
    write_miniimagenet(tmp_path, per_class=1)
    a, b = build("miniimagenet-20", tmp_path, seed=0), build("miniimagenet-20", tmp_path, seed=1)
    assert len(a.tasks) == 20 and a.input_shape == (3, 84, 84) and a.classes_per_task == 5
    assert all(sorted(t.y_train.tolist()) == list(range(5)) for t in a.tasks)
    assert not all(torch.equal(s.x_train, t.x_train) for s, t in zip(a.tasks, b.tasks, strict=True))


def test_pmnist_from_files(tmp_path):
    write_mnist_like(tmp_path, "MNIST", per_class=2)
    sequence = build("pmnist", tmp_path)
    assert len(sequence.tasks) == 10 and sequence.input_shape == (784,)
    assert not sequence.multi_head


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar100-10", "cifar-100-python"),
        ("five-datasets", "cifar-10-batches-py"),
        ("miniimagenet-20", "miniimagenet"),
        ("pmnist", "MNIST"),
    ],
)
def test_missing_paper_data_is_one_clear_error(tmp_path, name, expected):
    with pytest.raises(MissingDataError) as caught:
        build(name, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / expected) in message


@pytest.mark.slow
def test_the_first_validation_split_is_the_head_of_the_training_set_in_order():
    """The PMNIST loaders' split: the first int(pc_valid n) samples validate, unshuffled, and the
    seed plays no part."""
    train, valid = split_validation(25, 0.1, seed=3, rule="first")
    assert valid.tolist() == [0, 1] and train.tolist() == list(range(2, 25))
    assert torch.equal(split_validation(25, 0.1, seed=9, rule="first")[0], train)
    sequence = build("pmnist5k")
    scenario = to_scenario(sequence, 0.1, 0, validation_split="first")
    x_valid, y_valid, _ = scenario.valid_stream[2].dataset[0]
    task = sequence.tasks[2]
    assert int(y_valid) == int(task.y_train[0])
    expected = ((task.x_train[0].float() / 255) - 0.1307) / 0.3081
    torch.testing.assert_close(x_valid, expected)
