"""Writers of small dataset files in the real on-disk formats, shared by the data tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io

RNG = np.random.default_rng(0)


def images(n: int, *shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def write_idx(folder: Path, prefix: str, x: np.ndarray, y: np.ndarray, packed: bool) -> None:
    """IDX files: magic 0x00000803 / 0x00000801, big-endian dimensions, then the bytes."""
    files = {
        f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x803, *x.shape) + x.tobytes(),
        f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x801, len(y)) + y.tobytes(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if packed:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)


def cifar_rows(n: int) -> np.ndarray:
    """N x 3072 rows (R, G, B planes of 32 x 32); row 0 is a pure red image."""
    rows = images(n, 3 * 32 * 32)
    rows[0] = 0
    rows[0, :1024] = 255
    return rows


def write_mnist_like(root: Path, folder: str, per_class: int) -> None:
    """`per_class` train and test images of each digit under <root>/<folder>/raw."""
    y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    for prefix in ("train", "t10k"):
        write_idx(root / folder / "raw", prefix, images(len(y), 28, 28), y, packed=False)


def write_cifar10(root: Path, per_class: int) -> None:
    labels = list(np.repeat(np.arange(10), per_class))
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_pickle(folder / name, {"data": cifar_rows(len(labels)), "labels": labels})


def write_cifar100(root: Path, per_class: int) -> None:
    labels = list(np.repeat(np.arange(100), per_class))
    for name in ("train", "test"):
        write_pickle(
            root / "cifar-100-python" / name,
            {"data": cifar_rows(len(labels)), "fine_labels": labels, "coarse_labels": labels},
        )


def write_svhn(root: Path, per_class: int) -> None:
    y = np.repeat(np.arange(1, 11, dtype=np.uint8), per_class)[:, None]  # 10 is digit 0
    for name in ("train_32x32.mat", "test_32x32.mat"):
        root.mkdir(parents=True, exist_ok=True)
        x = images(len(y), 32, 32, 3).transpose(1, 2, 3, 0)  # H x W x C x N
        scipy.io.savemat(root / name, {"X": x, "y": y})


def write_notmnist(root: Path, per_class: int) -> None:
    y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    for split in ("train", "test"):
        write_pickle(
            root / "notmnist" / f"notmnist_{split}.pkl",
            {"features": images(len(y), 1, 32, 32), "labels": y},
        )


def write_miniimagenet(root: Path, per_class: int) -> None:
    labels = np.repeat(np.arange(100), per_class)
    for split in ("train", "test"):
        write_pickle(
            root / "miniimagenet" / f"{split}.pkl",
            {"images": images(len(labels), 84, 84, 3), "labels": labels},
        )
