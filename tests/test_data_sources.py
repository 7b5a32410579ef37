"""Raw loaders read small files written here in each dataset's real on-disk format."""

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from ondisk import cifar_rows, images, write_idx, write_pickle

from clbench.data import sources
from clbench.data.sources import (
    ImageArrays,
    load_cifar10,
    load_cifar100,
    load_fashion_mnist,
    load_miniimagenet,
    load_mnist,
    load_notmnist,
    load_svhn,
)
from clbench.errors import ClbenchError, MissingDataError


def _check_arrays(data: ImageArrays, item_shape: tuple[int, ...]) -> None:
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.uint8 and x.shape[1:] == item_shape
        assert y.dtype == np.int64 and y.shape == (len(x),)


# --- MNIST format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "folder", "packed"),
    [(load_mnist, "MNIST", False), (load_fashion_mnist, "FashionMNIST", True)],
)
def test_idx_round_trip(tmp_path, loader, folder, packed):
    raw = tmp_path / folder / "raw"
    x_train, x_test = images(5, 28, 28), images(3, 28, 28)
    y_train, y_test = np.array([0, 9, 3, 3, 7], np.uint8), np.array([1, 2, 8], np.uint8)
    write_idx(raw, "train", x_train, y_train, packed)
    write_idx(raw, "t10k", x_test, y_test, packed)

    data = loader(tmp_path, download=False)

    _check_arrays(data, (1, 28, 28))
    np.testing.assert_array_equal(data.x_train[:, 0], x_train)
    np.testing.assert_array_equal(data.x_test[:, 0], x_test)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.y_test, y_test)


# --- CIFAR python batches -----------------------------------------------------------------


def test_cifar10_round_trip(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    written = {name: (cifar_rows(2), [i, 9 - i]) for i, name in enumerate(names)}
    for name, (rows, labels) in written.items():
        write_pickle(folder / name, {"batch_label": name, "data": rows, "labels": labels})

    data = load_cifar10(tmp_path, download=False)

    _check_arrays(data, (3, 32, 32))
    train_rows = np.concatenate([written[name][0] for name in names[:5]])
    np.testing.assert_array_equal(data.x_train.reshape(10, -1), train_rows)
    np.testing.assert_array_equal(data.y_train, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5])
    np.testing.assert_array_equal(data.x_test.reshape(2, -1), written["test_batch"][0])
    assert (data.x_test[0, 0] == 255).all() and (data.x_test[0, 1:] == 0).all()


def test_cifar100_round_trip(tmp_path):
    folder = tmp_path / "cifar-100-python"
    train_rows, test_rows = cifar_rows(4), cifar_rows(2)
    write_pickle(
        folder / "train",
        {"data": train_rows, "fine_labels": [99, 0, 5, 42], "coarse_labels": [0] * 4},
    )
    write_pickle(
        folder / "test", {"data": test_rows, "fine_labels": [17, 3], "coarse_labels": [1, 1]}
    )

    data = load_cifar100(tmp_path, download=False)

    _check_arrays(data, (3, 32, 32))
    np.testing.assert_array_equal(data.x_train.reshape(4, -1), train_rows)
    np.testing.assert_array_equal(data.y_train, [99, 0, 5, 42])
    np.testing.assert_array_equal(data.y_test, [17, 3])
    assert (data.x_train[0, 0] == 255).all() and (data.x_train[0, 1:] == 0).all()
    # A pixel's position survives: plane c, row h, column w is item c*1024 + h*32 + w.
    assert data.x_test[1, 2, 5, 7] == test_rows[1, 2 * 1024 + 5 * 32 + 7]


# --- SVHN .mat ----------------------------------------------------------------------------


def test_svhn_round_trip(tmp_path):
    for name, n in (("train_32x32.mat", 4), ("test_32x32.mat", 2)):
        x = np.zeros((32, 32, 3, n), np.uint8)  # H x W x C x N, as in the official files
        x[3, 5, 1, 1] = 77  # green, row 3, column 5 of image 1
        y = np.array([[10], [1], [9], [10]][:n], np.uint8)  # 10 is digit 0
        scipy.io.savemat(tmp_path / name, {"X": x, "y": y})

    data = load_svhn(tmp_path, download=False)

    _check_arrays(data, (3, 32, 32))
    np.testing.assert_array_equal(data.y_train, [0, 1, 9, 0])
    np.testing.assert_array_equal(data.y_test, [0, 1])
    assert data.x_train[1, 1, 3, 5] == 77 and data.x_train.sum() == 77
    assert data.x_test[1, 1, 3, 5] == 77 and data.x_test.sum() == 77


# --- user-provided datasets ---------------------------------------------------------------


def test_notmnist_round_trip(tmp_path):
    folder = tmp_path / "notmnist"
    x_train, x_test = images(6, 1, 32, 32), images(2, 1, 32, 32)
    y_train, y_test = np.array([0, 1, 2, 9, 9, 4], np.uint8), np.array([5, 0], np.uint8)
    write_pickle(folder / "notmnist_train.pkl", {"features": x_train, "labels": y_train})
    write_pickle(folder / "notmnist_test.pkl", {"features": x_test, "labels": y_test})

    data = load_notmnist(tmp_path)

    _check_arrays(data, (1, 32, 32))
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.y_test, y_test)


def test_miniimagenet_round_trip(tmp_path):
    folder = tmp_path / "miniimagenet"
    train = [images(1, 84, 84, 3)[0] for _ in range(3)]  # a list of H x W x C images
    test = images(2, 84, 84, 3)  # one stacked array is accepted too
    write_pickle(folder / "train.pkl", {"images": train, "labels": [0, 99, 50]})
    write_pickle(folder / "test.pkl", {"images": test, "labels": np.array([7, 7])})

    data = load_miniimagenet(tmp_path)

    _check_arrays(data, (3, 84, 84))
    np.testing.assert_array_equal(data.x_train, np.stack(train).transpose(0, 3, 1, 2))
    assert data.x_test[1, 2, 10, 20] == test[1, 10, 20, 2]
    np.testing.assert_array_equal(data.y_train, [0, 99, 50])
    np.testing.assert_array_equal(data.y_test, [7, 7])


def test_miniimagenet_wrong_shape_is_one_line_error(tmp_path):
    folder = tmp_path / "miniimagenet"
    for name in ("train.pkl", "test.pkl"):
        write_pickle(folder / name, {"images": images(2, 3, 84, 84), "labels": [0, 1]})

    with pytest.raises(MissingDataError, match=r"expected uint8 N x 84 x 84 x 3") as info:
        load_miniimagenet(tmp_path)
    assert "\n" not in str(info.value) and str(folder / "train.pkl") in str(info.value)


def test_notmnist_label_range_is_checked(tmp_path):
    folder = tmp_path / "notmnist"
    for name in ("notmnist_train.pkl", "notmnist_test.pkl"):
        write_pickle(folder / name, {"features": images(2, 1, 32, 32), "labels": np.array([0, 10])})

    with pytest.raises(MissingDataError, match=r"expected 0\.\.9"):
        load_notmnist(tmp_path)


# --- missing data -------------------------------------------------------------------------

DOWNLOADABLE = [
    (load_cifar10, "cifar-10-batches-py", "data_batch_1"),
    (load_cifar100, "cifar-100-python", "train"),
    (load_mnist, "MNIST/raw", "train-images-idx3-ubyte"),
    (load_fashion_mnist, "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
    (load_svhn, "", "train_32x32.mat"),
]
USER_PROVIDED = [
    (load_notmnist, "notmnist", "notmnist_train.pkl"),
    (load_miniimagenet, "miniimagenet", "test.pkl"),
]


def _assert_one_line_naming(error: MissingDataError, root: Path, folder: str, file: str) -> None:
    message = str(error)
    assert isinstance(error, ClbenchError)
    assert "\n" not in message
    assert str(root / folder) in message and file in message


@pytest.mark.parametrize(("loader", "folder", "file"), DOWNLOADABLE)
def test_missing_without_download(tmp_path, loader, folder, file):
    with pytest.raises(MissingDataError) as info:
        loader(tmp_path, download=False)
    _assert_one_line_naming(info.value, tmp_path, folder, file)
    assert "downloads automatically" in str(info.value)


@pytest.mark.parametrize(("loader", "folder", "file"), USER_PROVIDED)
def test_missing_user_provided(tmp_path, loader, folder, file):
    with pytest.raises(MissingDataError) as info:
        loader(tmp_path)
    _assert_one_line_naming(info.value, tmp_path, folder, file)
    assert "not downloaded" in str(info.value)


def test_partial_files_are_named(tmp_path):
    folder = tmp_path / "cifar-100-python"
    write_pickle(folder / "train", {"data": cifar_rows(1), "fine_labels": [0]})

    with pytest.raises(MissingDataError, match=r"missing: test\)"):
        load_cifar100(tmp_path, download=False)


def _offline(*args, **kwargs):
    raise OSError("name resolution failed")


@pytest.mark.parametrize(("loader", "folder", "file"), DOWNLOADABLE)
def test_download_without_network_fails_fast(tmp_path, monkeypatch, loader, folder, file):
    monkeypatch.setattr(socket, "create_connection", _offline)

    start = time.monotonic()
    with pytest.raises(MissingDataError, match="unreachable") as info:
        loader(tmp_path, download=True)
    assert time.monotonic() - start < 2.0
    _assert_one_line_naming(info.value, tmp_path, folder, file)


def test_hanging_name_resolution_is_cut_short(tmp_path, monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(3.0)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.setattr(sources, "PROBE_TIMEOUT_S", 0.2)

    start = time.monotonic()
    with pytest.raises(MissingDataError, match="unreachable"):
        load_cifar100(tmp_path, download=True)
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize(("loader", "folder", "file"), DOWNLOADABLE)
def test_failed_download_is_one_line(tmp_path, monkeypatch, loader, folder, file):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(sources, "_reachable", lambda url: True)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)

    with pytest.raises(MissingDataError, match="download failed") as info:
        loader(tmp_path, download=True)
    _assert_one_line_naming(info.value, tmp_path, folder, file)
