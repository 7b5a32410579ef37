"""The paper benchmarks of the GPM family (docs/methods.md, "The protocol shared by the GPM
family"), from torchvision data under the data root (downloaded where the network allows) and
user-provided files."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from clbench.data import sources
from clbench.data.benchmark import (
    DataOptions,
    DataOrder,
    TaskData,
    TaskSequence,
    permuted_mnist,
    reference_permutation,
    split_by_classes,
)

CIFAR_MEAN = tuple(v / 255 for v in (125.3, 123.0, 113.9))
CIFAR_STD = tuple(v / 255 for v in (63.0, 62.1, 66.7))
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# 5-datasets, in the fixed order of the reference, with each dataset's own normalisation.
FIVE_DATASETS: tuple[
    tuple[str, Callable[[DataOptions], sources.ImageArrays], tuple, tuple], ...
] = (
    ("cifar10", lambda o: sources.load_cifar10(o.root, o.download), CIFAR_MEAN, CIFAR_STD),
    ("mnist", lambda o: sources.load_mnist(o.root, o.download), (0.1,), (0.2752,)),
    (
        "svhn",
        lambda o: sources.load_svhn(o.root, o.download),
        (0.4377, 0.4438, 0.4728),
        (0.198, 0.201, 0.197),
    ),
    (
        "fashion-mnist",
        lambda o: sources.load_fashion_mnist(o.root, o.download),
        (0.2190,),
        (0.3318,),
    ),
    ("notmnist", lambda o: sources.load_notmnist(o.root), (0.4254,), (0.4501,)),
)


def _tensors(arrays: sources.ImageArrays) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        torch.from_numpy(arrays.x_train),
        torch.from_numpy(arrays.y_train).long(),
        torch.from_numpy(arrays.x_test),
        torch.from_numpy(arrays.y_test).long(),
    )


def _to_rgb32(x: Tensor) -> Tensor:
    """Grey images zero-padded to 32x32 (MNIST-like 28x28 by 2 on each side; notMNIST is already
    32x32) and repeated to three channels; colour images pass unchanged."""
    if x.shape[1] == 3:
        return x
    pad = (32 - x.shape[-1]) // 2
    return torch.nn.functional.pad(x, (pad, pad, pad, pad)).repeat(1, 3, 1, 1)


def cifar100_10(options: DataOptions) -> TaskSequence:
    """CIFAR-100 in ten tasks: task k holds classes 10k..10k+9 (label n % 10), fixed order."""
    data = _tensors(sources.load_cifar100(options.root, options.download))
    groups = [list(range(10 * k, 10 * k + 10)) for k in range(10)]
    tasks = split_by_classes("cifar100", *data, groups, mean=CIFAR_MEAN, std=CIFAR_STD)
    return TaskSequence(tasks=tasks, classes_per_task=10, multi_head=True)


def five_datasets(options: DataOptions) -> TaskSequence:
    """CIFAR-10, MNIST, SVHN, Fashion-MNIST, notMNIST, one task each, all 3 x 32 x 32."""
    tasks = []
    for name, loader, mean, std in FIVE_DATASETS:
        x_train, y_train, x_test, y_test = _tensors(loader(options))
        tasks.append(
            TaskData(
                name=name,
                x_train=_to_rgb32(x_train),
                y_train=y_train,
                x_test=_to_rgb32(x_test),
                y_test=y_test,
                mean=mean,
                std=std,
            )
        )
    return TaskSequence(tasks=tasks, classes_per_task=10, multi_head=True)


def miniimagenet_classes(seed: int, order: DataOrder) -> list[list[int]]:
    """MiniImageNet's 100 classes in 20 tasks of 5, drawn with the run's seed. `reference`: the
    loaders of TRGP and GPCNS (LYang-666/TRGP dataloader/miniimagenet.py:152-153: numpy seeded,
    its permutation of the 100 classes split into 20 groups; seed 37, the papers', puts classes
    61, 49, 86, 78, 5 in the first task). `torch`: torch.randperm seeded with the seed."""
    if order == "reference":
        classes = reference_permutation(100, seed).tolist()
    else:
        classes = torch.randperm(100, generator=torch.Generator().manual_seed(seed)).tolist()
    return [classes[5 * k : 5 * k + 5] for k in range(20)]


def miniimagenet_20(options: DataOptions) -> TaskSequence:
    """MiniImageNet (user-provided pickles): 100 classes permuted with the seed, 20 tasks of 5."""
    data = _tensors(sources.load_miniimagenet(options.root))
    groups = miniimagenet_classes(options.seed, options.order)
    tasks = split_by_classes("miniimagenet", *data, groups, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return TaskSequence(tasks=tasks, classes_per_task=5, multi_head=True)


def pmnist(options: DataOptions) -> TaskSequence:
    """Full MNIST under ten pixel permutations, one shared ten-way head (GPM's PMNIST)."""
    return permuted_mnist(
        "pmnist", _tensors(sources.load_mnist(options.root, options.download)), options
    )
