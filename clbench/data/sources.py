"""Raw dataset loaders: uint8 images (N x C x H x W) and int64 labels as numpy arrays.

Each loader reads one dataset from its standard on-disk layout under a data root.
CIFAR-10/100, MNIST, Fashion-MNIST and SVHN can be fetched with torchvision when
``download`` is true and the network allows; notMNIST and MiniImageNet must be provided
by the user. Anything absent, unobtainable or malformed raises ``MissingDataError``
with a one-line message naming the expected files and where they come from.

Pickled data files are read by a restricted unpickler that builds only numpy arrays, numpy
scalars and plain Python values: a file naming any other code is refused, not run.

torchvision and scipy are imported by the loaders that read with them, so that listing the
benchmarks does not import them.
"""

from __future__ import annotations

import codecs
import gzip
import os
import pickle
import shutil
import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from clbench.errors import MissingDataError

if TYPE_CHECKING:
    import torchvision.datasets as tvd

__all__ = [
    "ImageArrays",
    "MissingDataError",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_miniimagenet",
    "load_mnist",
    "load_notmnist",
    "load_svhn",
]

# Seconds allowed for resolving and reaching a download host before giving up on it.
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ImageArrays:
    """Train and test split of one dataset: uint8 N x C x H x W images, int64 N labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class _Layout:
    """Where a dataset's files live under the data root and where they come from."""

    title: str
    folder: str
    files: tuple[str, ...]
    origin: str
    download_url: str | None = None

    def missing(self, root: Path) -> list[str]:
        return [name for name in self.files if not (root / self.folder / name).is_file()]

    def error(self, root: Path, reason: str = "") -> MissingDataError:
        missing = self.missing(root)
        files = f"expected: {', '.join(self.files)}"
        if len(missing) < len(self.files):
            files += f"; missing: {', '.join(missing)}"
        detail = f"; {reason}" if reason else ""
        return MissingDataError(
            f"{self.title} not found under {root / self.folder} ({files}{detail}); {self.origin}"
        )


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# The single description of every dataset's files, used for the existence check and messages.
_LAYOUTS: dict[str, _Layout] = {
    "cifar10": _Layout(
        "CIFAR-10",
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
        "it downloads automatically when the network allows, "
        "or get it from https://www.cs.toronto.edu/~kriz/cifar.html (python version)",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": _Layout(
        "CIFAR-100",
        "cifar-100-python",
        ("train", "test"),
        "it downloads automatically when the network allows, "
        "or get it from https://www.cs.toronto.edu/~kriz/cifar.html (python version)",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
    "mnist": _Layout(
        "MNIST",
        "MNIST/raw",
        _MNIST_FILES,
        "it downloads automatically when the network allows, or put the four IDX files "
        "(plain or .gz) there from https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion_mnist": _Layout(
        "Fashion-MNIST",
        "FashionMNIST/raw",
        _MNIST_FILES,
        "it downloads automatically when the network allows, or put the four IDX files "
        "(plain or .gz) there from https://github.com/zalandoresearch/fashion-mnist",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "svhn": _Layout(
        "SVHN",
        ".",
        ("train_32x32.mat", "test_32x32.mat"),
        "it downloads automatically when the network allows, "
        "or get format 2 from http://ufldl.stanford.edu/housenumbers/",
        "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
    ),
    "notmnist": _Layout(
        "notMNIST",
        "notmnist",
        ("notmnist_train.pkl", "notmnist_test.pkl"),
        "it is not downloaded: unzip notmnist.zip from "
        "https://github.com/nkundiushuti/notmnist_convert there (pickled dicts with 'features' "
        "uint8 N x 1 x 32 x 32 and 'labels' 0..9, as read by GPM's 5-datasets code)",
    ),
    "miniimagenet": _Layout(
        "MiniImageNet",
        "miniimagenet",
        ("train.pkl", "test.pkl"),
        "it is not downloaded: pickle dicts with 'images' (84x84x3 uint8 each) and 'labels' "
        "(0..99) from mini-ImageNet (https://github.com/yaoyao-liu/mini-imagenet-tools), "
        "500 train / 100 test images per class as in ACL's data/split_miniimagenet.py",
    ),
}


def load_cifar10(root: Path, download: bool) -> ImageArrays:
    """CIFAR-10 from ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``; 3 x 32 x 32."""
    import torchvision.datasets as tvd

    layout = _LAYOUTS["cifar10"]
    _ensure(layout, Path(root), download, lambda: tvd.CIFAR10(root, train=False, download=True))
    folder = Path(root) / layout.folder
    train = [_read_cifar_batch(folder / f"data_batch_{i}", "labels", 10) for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(folder / "test_batch", "labels", 10)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return ImageArrays(x_train, y_train, x_test, y_test)


def load_cifar100(root: Path, download: bool) -> ImageArrays:
    """CIFAR-100 from ``<root>/cifar-100-python/{train,test}``; 3 x 32 x 32, fine labels 0..99."""
    import torchvision.datasets as tvd

    layout = _LAYOUTS["cifar100"]
    _ensure(layout, Path(root), download, lambda: tvd.CIFAR100(root, train=False, download=True))
    folder = Path(root) / layout.folder
    x_train, y_train = _read_cifar_batch(folder / "train", "fine_labels", 100)
    x_test, y_test = _read_cifar_batch(folder / "test", "fine_labels", 100)
    return ImageArrays(x_train, y_train, x_test, y_test)


def load_mnist(root: Path, download: bool) -> ImageArrays:
    """MNIST from ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    import torchvision.datasets as tvd

    return _load_idx(_LAYOUTS["mnist"], tvd.MNIST, Path(root), download)


def load_fashion_mnist(root: Path, download: bool) -> ImageArrays:
    """Fashion-MNIST from ``<root>/FashionMNIST/raw/`` with the same four IDX files as MNIST."""
    import torchvision.datasets as tvd

    return _load_idx(_LAYOUTS["fashion_mnist"], tvd.FashionMNIST, Path(root), download)


def load_svhn(root: Path, download: bool) -> ImageArrays:
    """SVHN (format 2) from ``<root>/{train,test}_32x32.mat``; 3 x 32 x 32, digit 0 labelled 0.

    Each .mat holds 'X' (32 x 32 x 3 x N uint8) and 'y' (N x 1, with 10 standing for digit 0).
    """
    import torchvision.datasets as tvd

    layout = _LAYOUTS["svhn"]

    def fetch() -> None:
        for split in ("train", "test"):
            tvd.SVHN(root, split=split, download=True)

    _ensure(layout, Path(root), download, fetch)
    x_train, y_train = _read_svhn(Path(root) / "train_32x32.mat")
    x_test, y_test = _read_svhn(Path(root) / "test_32x32.mat")
    return ImageArrays(x_train, y_train, x_test, y_test)


def load_notmnist(root: Path) -> ImageArrays:
    """notMNIST (letters A..J as labels 0..9) in the format of the GPM/TRGP 5-datasets code.

    Expected: ``<root>/notmnist/notmnist_train.pkl`` and ``notmnist_test.pkl``, the content
    of ``notmnist.zip`` from https://github.com/nkundiushuti/notmnist_convert. Each is a
    pickled dict with 'features' (uint8, N x 1 x 32 x 32: notMNIST_small resized to 32 px)
    and 'labels' (integers 0..9). Images are returned as N x 1 x 32 x 32, already 32 px.
    """
    return _user_pickles("notmnist", root, "features", (1, 32, 32), 10)


def load_miniimagenet(root: Path) -> ImageArrays:
    """MiniImageNet in the format of the GPM/TRGP/ACL MiniImageNet code; 3 x 84 x 84, labels 0..99.

    Expected: ``<root>/miniimagenet/train.pkl`` and ``test.pkl``, each a pickled dict with
    'images' (a list of 84 x 84 x 3 uint8 arrays, or one N x 84 x 84 x 3 uint8 array) and
    'labels' (a list or array of class indices 0..99), as written by ACL's
    ``data/split_miniimagenet.py`` (500 train and 100 test images per class).
    """
    return _user_pickles("miniimagenet", root, "images", (84, 84, 3), 100)


def _user_pickles(
    key: str, root: Path, image_field: str, image_shape: tuple[int, ...], n_classes: int
) -> ImageArrays:
    """Train and test pickles of a user-provided dataset: dicts of images and labels. Images
    given channels-last (H x W x C) are returned N x C x H x W."""
    layout = _LAYOUTS[key]
    root = Path(root)
    _ensure(layout, root, download=False, fetch=None)
    splits = []
    for name in layout.files:
        path = root / layout.folder / name
        entry = _read_pickle(path)
        x = _checked_images(_as_array(_field(entry, image_field, path), path), image_shape, path)
        if image_shape[-1] == 3:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        labels = _checked_labels(_field(entry, "labels", path), len(x), n_classes, path)
        splits += [x, labels]
    return ImageArrays(*splits)


def _ensure(
    layout: _Layout, root: Path, download: bool, fetch: Callable[[], object] | None
) -> None:
    """Raise MissingDataError unless the layout's files exist, downloading them first if allowed."""
    if not layout.missing(root):
        return
    reason = ""
    if download and fetch is not None and layout.download_url is not None:
        if not _reachable(layout.download_url):
            reason = f"download skipped: {urlsplit(layout.download_url).hostname} is unreachable"
        else:
            try:
                fetch()
            # Any failure of the download (network, checksum, disk) means the data is missing.
            except Exception as exc:
                reason = f"download failed: {type(exc).__name__}: {_one_line(exc)}"
    if layout.missing(root):
        raise layout.error(root, reason)


def _reachable(url: str) -> bool:
    """Whether the URL's host resolves and accepts a TCP connection within PROBE_TIMEOUT_S.

    torchvision downloads without a timeout, and name resolution has none either, so the
    probe runs in a daemon thread that is abandoned when it takes too long.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    return outcome == [True]


def _load_idx(layout: _Layout, dataset: type[tvd.MNIST], root: Path, download: bool) -> ImageArrays:
    """Read an MNIST-format dataset through torchvision, unpacking .gz copies of the files first."""
    folder = root / layout.folder
    for name in layout.missing(root):
        packed = folder / f"{name}.gz"
        if packed.is_file():
            _gunzip(packed, folder / name)
    _ensure(layout, root, download, lambda: dataset(root, train=True, download=True))
    arrays = []
    for train in (True, False):
        try:
            split = dataset(root, train=train, download=False)
        except (AssertionError, RuntimeError, TypeError, ValueError) as exc:
            raise MissingDataError(
                f"{folder}: unreadable IDX files ({type(exc).__name__}: {_one_line(exc)})"
            ) from None
        arrays += [split.data.numpy()[:, None], split.targets.numpy().astype(np.int64)]
    return ImageArrays(*arrays)


def _gunzip(packed: Path, target: Path) -> None:
    """Decompress `packed` into `target` atomically; a corrupt archive is a one-line error and
    no partial file is left behind."""
    partial = target.with_name(target.name + ".part")
    try:
        with gzip.open(packed, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(partial, target)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise MissingDataError(
            f"{packed} is not a readable gzip file ({_one_line(exc)}); delete it and put an "
            f"intact copy there, or {target.name} uncompressed"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _read_cifar_batch(path: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: 'data' N x 3072 uint8 (R, G, B planes of 32 x 32) and labels.

    The batch is read directly rather than through torchvision's CIFAR classes, which
    insist on the MD5 sums of the official files: one reading path then serves the
    official data and the small files the tests write. Downloads are still verified by
    torchvision against the archive's checksum.
    """
    entry = _read_pickle(path)
    data = _as_array(_field(entry, "data", path), path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise MissingDataError(
            f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 N x 3072"
        )
    labels = _checked_labels(_field(entry, label_key, path), len(data), n_classes, path)
    return data.reshape(-1, 3, 32, 32), labels


def _read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN .mat file as N x 3 x 32 x 32 images and labels with 10 mapped to 0."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError) as exc:
        raise MissingDataError(f"{path} is not a readable .mat file: {_one_line(exc)}") from None
    x = _as_array(_field(mat, "X", path), path)
    if x.ndim != 4:
        raise MissingDataError(f"{path}: 'X' has shape {x.shape}, expected 32 x 32 x 3 x N")
    # The file stores H x W x C x N.
    x = _checked_images(np.ascontiguousarray(x.transpose(3, 2, 0, 1)), (3, 32, 32), path)
    y = _as_array(_field(mat, "y", path), path).reshape(-1).astype(np.int64)
    y[y == 10] = 0
    return x, _checked_labels(y, len(x), 10, path)


def _numpy_pickle_globals() -> dict[tuple[str, str], object]:
    """The globals that pickles of numpy arrays and scalars name, mapped to the installed numpy's
    objects. Files written by numpy 1.x name ``numpy.core``, by numpy 2.x ``numpy._core``; the
    callables are taken from numpy's own reductions, whichever module holds them now."""
    array = np.zeros(1, np.uint8)
    admitted: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes bytes as _codecs.encode(text, "latin1") at protocols 0 to 2.
        ("_codecs", "encode"): codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        admitted[(f"{core}.multiarray", "_reconstruct")] = array.__reduce__()[0]  # protocol < 5
        admitted[(f"{core}.numeric", "_frombuffer")] = array.__reduce_ex__(5)[0]  # protocol 5
        admitted[(f"{core}.multiarray", "scalar")] = np.uint8(0).__reduce__()[0]
    return admitted


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and scalars, dicts, lists, tuples, strings, bytes
    and numbers, and refuses every other global before importing anything."""

    ADMITTED = _numpy_pickle_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ADMITTED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which is refused: data files may hold only numpy "
                "arrays, numbers, strings, lists and dicts, and no code in them is run"
            ) from None


def _read_pickle(path: Path) -> object:
    """Unpickle a data file with `_DataUnpickler`; latin1 also decodes pickles written by
    Python 2."""
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except MemoryError:
        raise  # a file too large for this machine is not a malformed one
    # With no code admitted, any other failure of the unpickler or of numpy's callables means a
    # malformed file: AttributeError, EOFError, LookupError, OverflowError, TypeError, ...
    except Exception as exc:
        raise MissingDataError(
            f"{path} is not a readable pickle: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _field(entry: object, key: str, path: Path) -> object:
    """entry[key], or a one-line error naming the file and the keys it has."""
    if not isinstance(entry, dict) or key not in entry:
        keys = sorted(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__
        raise MissingDataError(f"{path}: no '{key}' entry (found {keys})")
    return entry[key]


def _one_line(exc: BaseException) -> str:
    """An exception's message with all whitespace runs, newlines included, made single spaces."""
    return " ".join(str(exc).split())


def _as_array(value: object, path: Path) -> np.ndarray:
    """`value` as one numpy array, or a one-line error when its items do not stack."""
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise MissingDataError(
            f"{path}: entries do not form one array ({_one_line(exc)})"
        ) from None


def _checked_images(x: np.ndarray, item_shape: tuple[int, ...], path: Path) -> np.ndarray:
    """Return `x` if it is uint8 with shape N x item_shape, else raise a one-line error."""
    if x.dtype != np.uint8 or x.shape[1:] != item_shape or len(x) == 0:
        expected = " x ".join(map(str, ("N", *item_shape)))
        raise MissingDataError(f"{path}: images are {x.dtype} {x.shape}, expected uint8 {expected}")
    return x


def _checked_labels(y: object, count: int, n_classes: int, path: Path) -> np.ndarray:
    """Labels as int64, checked to be `count` integers in 0..n_classes-1."""
    labels = np.asarray(y)
    if count == 0 or labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise MissingDataError(
            f"{path}: labels are {labels.dtype} {labels.shape}, expected {count} integers"
        )
    if labels.min() < 0 or labels.max() >= n_classes:
        raise MissingDataError(
            f"{path}: labels span {labels.min()}..{labels.max()}, expected 0..{n_classes - 1}"
        )
    return labels.astype(np.int64)
