"""Dataset files cannot run code: pickles naming anything but numpy arrays and plain values are
refused with one line, data in the real formats still loads, and a corrupt .gz leaves nothing."""

import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from ondisk import cifar_rows, images, write_idx

from clbench.cli import main
from clbench.data.sources import load_cifar100, load_miniimagenet

PROTOCOLS = [2, 4, 5]


class _Payload:
    """Unpickling this creates `marker`: the code a crafted data file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _run_error(capsys, root: Path, benchmark: str) -> str:
    """The single stderr line of `clbench run` on `benchmark` with data under `root`."""
    argv = ["run", "--benchmark", benchmark, "--strategy", "naive", "--data-root", str(root)]
    argv += ["--no-download", "--results", str(root / "runs"), "--quiet"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("clbench: error: ")
    return lines[0]


def _py2_str(value: bytes) -> bytes:
    """A Python 2 byte string as cPickle writes it (SHORT_BINSTRING)."""
    return b"U" + bytes([len(value)]) + value


def _python2_cifar_batch(rows: np.ndarray, labels: list[int]) -> bytes:
    """{'data': rows, 'labels': labels} as Python 2's cPickle (protocol 2) and numpy 1.x wrote
    the official CIFAR python batches: numpy.core names, byte strings, the array's bytes raw."""
    ints = b"".join(b"J" + struct.pack("<i", v) for v in (-1, -1))
    dtype = b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
    dtype += b"(K\x03" + _py2_str(b"|") + b"NNN" + ints + b"K\x00tb"
    shape = b"".join(b"J" + struct.pack("<i", v) for v in rows.shape) + b"\x86"
    array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
    array += _py2_str(b"b") + b"\x87R(K\x01" + shape + dtype
    array += b"\x89T" + struct.pack("<I", rows.nbytes) + rows.tobytes() + b"tb"
    label_list = b"](" + b"".join(b"K" + bytes([y]) for y in labels) + b"e"
    return b"\x80\x02}(" + _py2_str(b"data") + array + _py2_str(b"fine_labels") + label_list + b"u."


def _cifar100_batch(rows: np.ndarray, labels: list[int], protocol: int | str) -> bytes:
    """A CIFAR-100 batch as Python 3 writes it at `protocol`, or as Python 2 wrote it."""
    if protocol == "python2":
        return _python2_cifar_batch(rows, labels)
    batch = {
        "batch_label": b"training batch 1 of 1",  # bytes: _codecs.encode at protocol 2
        "filenames": [f"image_{i}.png" for i in range(len(labels))],
        "data": rows,
        "fine_labels": [np.int64(y) for y in labels],  # numpy scalars
    }
    return pickle.dumps(batch, protocol=protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_miniimagenet_pickles_load_and_a_payload_is_refused(tmp_path, capsys, protocol):
    folder = tmp_path / "miniimagenet"
    folder.mkdir()
    train = [images(1, 84, 84, 3)[0] for _ in range(3)]  # a list of H x W x C arrays
    test = images(2, 84, 84, 3)
    train_file = {"images": train, "labels": [np.int64(0), np.int64(99), np.int64(50)]}
    (folder / "train.pkl").write_bytes(pickle.dumps(train_file, protocol=protocol))
    test_file = {"images": test, "labels": np.array([7, 3])}
    (folder / "test.pkl").write_bytes(pickle.dumps(test_file, protocol=protocol))

    data = load_miniimagenet(tmp_path)
    np.testing.assert_array_equal(data.x_train, np.stack(train).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.x_test, test.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.y_train, [0, 99, 50])
    np.testing.assert_array_equal(data.y_test, [7, 3])

    marker = tmp_path / "payload-ran"
    crafted = {"images": _Payload(marker), "labels": [0]}
    (folder / "train.pkl").write_bytes(pickle.dumps(crafted, protocol=protocol))
    line = _run_error(capsys, tmp_path, "miniimagenet-20")
    assert not marker.exists()
    assert str(folder / "train.pkl") in line and re.search(
        r"(builtins|__builtin__)\.exec, which is refused", line
    )


@pytest.mark.parametrize("protocol", [*PROTOCOLS, "python2"])
def test_cifar_batches_load_and_a_payload_is_refused(tmp_path, capsys, protocol):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train_rows, test_rows = cifar_rows(3), cifar_rows(2)
    (folder / "train").write_bytes(_cifar100_batch(train_rows, [0, 99, 42], protocol))
    (folder / "test").write_bytes(_cifar100_batch(test_rows, [5, 6], protocol))

    data = load_cifar100(tmp_path, download=False)
    np.testing.assert_array_equal(data.x_train.reshape(3, -1), train_rows)
    np.testing.assert_array_equal(data.x_test.reshape(2, -1), test_rows)
    np.testing.assert_array_equal(data.y_train, [0, 99, 42])
    np.testing.assert_array_equal(data.y_test, [5, 6])

    marker = tmp_path / "payload-ran"
    crafted = {"data": _Payload(marker), "fine_labels": [0]}
    payload_protocol = 2 if protocol == "python2" else protocol
    (folder / "train").write_bytes(pickle.dumps(crafted, protocol=payload_protocol))
    line = _run_error(capsys, tmp_path, "cifar100-10")
    assert not marker.exists()
    assert str(folder / "train") in line and re.search(
        r"(builtins|__builtin__)\.exec, which is refused", line
    )


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"\x80\x02cno_such_module\nThing\n)R.", "no_such_module.Thing"),
        (b"\x80\x02cnumpy\ndtype\nU\x08nonsense\x85R.", "data type 'nonsense' not understood"),
    ],
    ids=["missing module", "bad numpy dtype"],
)
def test_unreadable_pickle_is_one_line(tmp_path, capsys, content, named):
    folder = tmp_path / "miniimagenet"
    folder.mkdir()
    for name in ("train.pkl", "test.pkl"):
        (folder / name).write_bytes(content)

    line = _run_error(capsys, tmp_path, "miniimagenet-20")
    assert f"{folder / 'train.pkl'} is not a readable pickle" in line and named in line


def _corrupt(packed: bytes, how: str) -> bytes:
    if how == "truncated":
        return packed[: len(packed) // 2]
    if how == "bad deflate data":
        return packed[:10] + b"\xff" * 32  # the 10-byte header, then an invalid block type
    return b"not a gzip file"


@pytest.mark.parametrize("how", ["truncated", "bad deflate data", "not gzip"])
def test_corrupt_gz_is_one_line_and_leaves_no_part_file(tmp_path, capsys, how):
    raw = tmp_path / "MNIST" / "raw"
    y = np.arange(10, dtype=np.uint8)
    write_idx(raw, "train", images(10, 28, 28), y, packed=True)
    write_idx(raw, "t10k", images(10, 28, 28), y, packed=True)
    packed = raw / "train-images-idx3-ubyte.gz"
    packed.write_bytes(_corrupt(packed.read_bytes(), how))

    line = _run_error(capsys, tmp_path, "pmnist")
    assert f"{packed} is not a readable gzip file" in line and "delete it" in line
    assert not list(raw.glob("*.part")) and not (raw / "train-images-idx3-ubyte").exists()
