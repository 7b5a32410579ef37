"""Result files: one JSON document per run, written atomically, checked against a declared schema
when read.

`ResultDocument` (with `SpecRecord`, `Metrics` and `TaskRecord`) and `FailureRecord` declare every
field that sweeps, reports and figures read; a file that does not match is invalid, and readers
treat it as absent. Metrics are recomputed from the accuracy matrix (and the initial accuracies and
the continual-evaluation curve, where a file has them) on every read, never taken from the file.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from clbench.errors import ClbenchError, ConfigError
from clbench.metrics import Curve, gap_records, summarize
from clbench.strategy_info import StrategyInfo

#: 4: per-task `subspaces` ({quantity: {layer: size}}); 3: tasks numbered from 1
#: (`tasks[i]["task"]`, checkpoints `task1.pt`, ...), `initial_accuracy` and `strategy_info`;
#: 2: accuracies and metrics in percent; 1: fractions.
RESULT_FORMAT = 4
#: Prefix of every temporary file clbench writes into a results folder; leftovers of a killed
#: write carry it, and only files that carry it are deleted (`remove_temporaries`).
TMP_PREFIX = ".clbench-tmp-"


@dataclass
class SpecRecord:
    """A result's `spec`: the run's configuration (`clbench.resolution.ResolvedRun.config`)."""

    benchmark: str
    strategy: str
    model: str
    seed: int
    protocol: dict[str, Any]
    model_params: dict[str, Any]
    strategy_params: dict[str, Any]


@dataclass
class Metrics:
    """A result's `metrics` (percent or points); readers recompute them from the matrix."""

    acc: float
    bwt: float
    forgetting: float
    learning_accuracy: float
    average_incremental_accuracy: float | None = None
    forward_transfer: float | None = None  # only with `initial_accuracy`
    min_acc: float | None = None  # these four only with `continual`
    wc_acc: float | None = None
    windowed_forgetting: float | None = None
    stability_gap: float | None = None


@dataclass
class TaskRecord:
    """One entry of a result's `tasks`; `subspaces` holds, per quantity, each layer's size after
    the task, for strategies that keep subspaces (`clbench.strategies.contract.TaskReport`)."""

    train_seconds: float
    eval_seconds: float
    trainable_params: int
    kept_bytes: int
    subspaces: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ResultDocument:
    """A result file (`clbench.runner.run`); fields not declared here are kept but not read."""

    format: int
    name: str
    spec: SpecRecord
    accuracy_matrix: list[list[float]]
    metrics: Metrics
    tasks: list[TaskRecord]
    environment: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    #: b_j, the accuracy (percent) on task j of the model before any training, for forward
    #: transfer; only for benchmarks with one shared head (`clbench.runner.train_sequence`).
    initial_accuracy: list[float] = field(default_factory=list)
    #: How reports present the strategy (`clbench.strategy_info.StrategyInfo.as_dict`); files
    #: written before strategies declared it lack it (`clbench.strategy_info.info_of_result`).
    strategy_info: dict[str, Any] = field(default_factory=dict)
    #: The continual evaluation (`ContinualRecord`), only with `protocol.eval_every`.
    continual: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContinualRecord:
    """A result's `continual` record (`clbench.continual`, with `protocol.eval_every`): the curve
    as columns (`clbench.metrics.Curve`), each task's evaluation-subset size, the seconds the
    evaluations took, and the per-task stability gaps (`clbench.metrics.stability_gaps`; readers
    recompute them from the curve)."""

    eval_every: int
    split: str
    subset_sizes: list[int]
    seconds: float
    task_ends: list[int]
    iteration: list[int]
    task: list[int]
    accuracy: list[float]
    stability_gap: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FailureRecord:
    """A failure file, `<name>.failed.json` (`write_failure`)."""

    name: str
    error: str
    traceback: str = ""


class InvalidDocument(ClbenchError):
    """A file that is not a document of its kind; readers treat it as absent."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why = Path(path), why


def ensure_writable(folder: Path) -> None:
    """Create `folder` if needed and check that files can be written there, before any work."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=f"{TMP_PREFIX}probe-", delete=True)
        probe.close()
    except OSError as err:
        raise ClbenchError(f"cannot write results to {folder}: {err.strerror or err}") from None


def file_mode() -> int:
    """The mode a new file gets under the process's umask, 0o666 & ~umask (reading the umask
    means setting it: it is set back at once)."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it into place:
    readers see either the old file or the complete new one, never a partial write. The file gets
    the mode of any new file (`file_mode`), not the owner-only mode of a temporary file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    except OSError as err:
        raise ClbenchError(f"cannot write results to {path.parent}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), file_mode())
            json.dump(document, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def failure_path(results_dir: Path, name: str) -> Path:
    return Path(results_dir) / f"{name}.failed.json"


def write_failure(results_dir: Path, name: str, error: str, detail: str = "") -> None:
    """Write `<name>.failed.json` (`FailureRecord`) with `error` (one line) and `detail` (a
    traceback, if any)."""
    record = {"name": name, "error": error, "traceback": detail}
    write_json_atomic(failure_path(results_dir, name), record)


def write_replacing(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` by calling `write` on `TMP_PREFIX + name` beside it and renaming that into
    place: a reader sees the old file or the whole new one, and a failed write leaves neither the
    temporary file nor a partial `path`. A leftover temporary file (or a link placed there) is
    replaced, not followed. For files other than results (`write_json_atomic`), which keep their
    folder's permissions."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files that writes cut short (by a kill) left in `folder`."""
    for leftover in Path(folder).glob(f"{TMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)


@functools.cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _shown(value: Any) -> str:
    """`value` as a problem names it: containers by kind, other values as JSON (shortened)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _wanted(kind: Any) -> str:
    """What the schema type `kind` asks for, in words."""
    if isinstance(kind, types.UnionType):
        return " or ".join(_wanted(option) for option in typing.get_args(kind))
    if is_dataclass(kind) or typing.get_origin(kind) is dict:
        return "an object"
    if typing.get_origin(kind) is list:
        return "a list"
    words = {float: "a finite number", int: "an integer", str: "a string", type(None): "null"}
    return words[kind]


def _fits(value: Any, kind: Any) -> bool:
    """Whether `value` has the JSON type of `kind`, not looking inside containers."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return True
    if isinstance(kind, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(kind))
    if is_dataclass(kind) or origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def schema_problem(value: Any, kind: Any, where: str = "") -> str | None:
    """Why `value` (parsed JSON) does not match the schema type `kind` (a dataclass, `list[...]`,
    `dict[str, ...]`, `Any` or a scalar type), or None when it does; `where` names it."""
    if not _fits(value, kind):
        return f"{where or 'the document'} is {_shown(value)}, expected {_wanted(kind)}"
    inner: list[tuple[str, Any, Any]] = []  # (where, value, kind) of what `value` holds
    if isinstance(kind, type) and is_dataclass(kind):
        required = [
            f.name
            for f in fields(kind)
            if f.default is MISSING and f.default_factory is MISSING and f.name not in value
        ]
        if required:
            return f"{where + ': ' if where else ''}missing {', '.join(required)}"
        hints, prefix = _hints(kind), f"{where}." if where else ""
        inner = [
            (prefix + f.name, value[f.name], hints[f.name]) for f in fields(kind) if f.name in value
        ]
    elif typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        inner = [(f"{where}[{i}]", item, item_kind) for i, item in enumerate(value)]
    elif typing.get_origin(kind) is dict:
        item_kind = typing.get_args(kind)[1]
        inner = [(f"{where}.{key}", item, item_kind) for key, item in value.items()]
    for item_where, item, item_kind in inner:
        problem = schema_problem(item, item_kind, item_where)
        if problem:
            return problem
    return None


def validate_result(document: Any) -> str | None:
    """Why `document` is not a complete result (`ResultDocument`), or None when it is."""
    problem = schema_problem(document, ResultDocument)
    if problem:
        return problem
    if document["format"] != RESULT_FORMAT:
        return f"format {document['format']} (expected {RESULT_FORMAT})"
    matrix = document["accuracy_matrix"]
    if not matrix or any(len(row) != len(matrix) for row in matrix):
        return "accuracy_matrix is not square"
    for row in matrix:
        for value in row:
            if not 0 <= value <= 100:
                return f"accuracy {value!r} is not a percentage in [0, 100]"
    if len(document["tasks"]) != len(matrix):
        return "tasks and accuracy_matrix disagree on the number of tasks"
    initial = document.get("initial_accuracy")
    if initial is not None and len(initial) != len(matrix):
        return "initial_accuracy and accuracy_matrix disagree on the number of tasks"
    if initial is not None and not all(0 <= value <= 100 for value in initial):
        return "initial_accuracy holds a value that is not a percentage in [0, 100]"
    if "continual" in document:
        problem = continual_problem(document["continual"], len(matrix))
        if problem:
            return problem
    if "strategy_info" in document:
        try:
            StrategyInfo.from_dict(document["strategy_info"])
        except ConfigError as err:
            return str(err)
    return None


def continual_problem(record: Any, tasks: int) -> str | None:
    """Why `record` is not the continual evaluation of a run of `tasks` tasks, or None: its
    columns must agree, its rows follow training order with one row per (iteration, task), and
    every task's end must hold a row for each task trained by then."""
    problem = schema_problem(record, ContinualRecord, "continual")
    if problem:
        return problem
    rows = list(zip(record["iteration"], record["task"], record["accuracy"], strict=False))
    ends = record["task_ends"]
    if not rows or not len(record["iteration"]) == len(record["task"]) == len(record["accuracy"]):
        return "continual: iteration, task and accuracy are not columns of one non-empty table"
    if len(ends) != tasks or any(b <= a for a, b in zip([0, *ends], ends, strict=False)):
        return f"continual: task_ends must be {tasks} increasing iteration counts"
    if any(not 0 <= accuracy <= 100 for _, _, accuracy in rows):
        return "continual: an accuracy is not a percentage in [0, 100]"
    if any(not 1 <= task <= tasks for _, task, _ in rows):
        return f"continual: a task number is not in 1..{tasks}"
    keys = [(iteration, task) for iteration, task, _ in rows]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        return "continual: rows are not in training order, one per iteration and task"
    present = set(keys)
    for j, end in enumerate(ends, start=1):
        if any((end, k) not in present for k in range(1, j + 1)):
            return f"continual: the end of task {j} (iteration {end}) lacks a task's accuracy"
    return None


def _load(path: Path, problem: Callable[[Any], str | None]) -> dict[str, Any] | None:
    """The JSON document at `path`, or None when there is no file; raises InvalidDocument when it
    cannot be read or parsed or `problem` finds one in it."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as err:
        raise InvalidDocument(path, f"cannot be read ({err.strerror or err})") from None
    except ValueError as err:
        raise InvalidDocument(path, f"not valid JSON ({type(err).__name__})") from None
    why = problem(document)
    if why:
        raise InvalidDocument(path, why)
    return document


def load_result(path: Path) -> dict[str, Any] | None:
    """The result stored at `path`, with its metrics recomputed from its accuracy matrix (and its
    initial accuracies, when it has them); None when there is no file. Raises InvalidDocument for
    a file that is not a complete result."""
    document = _load(path, validate_result)
    if document is None:
        return None
    curve = None
    if "continual" in document:
        curve = Curve.of(document["continual"])
        document["continual"] = {**document["continual"], "stability_gap": gap_records(curve)}
    metrics = summarize(document["accuracy_matrix"], document.get("initial_accuracy"), curve)
    return {**document, "metrics": metrics}


def read_result(path: Path) -> dict[str, Any] | None:
    """The result stored at `path` (as `load_result`), or None when it is absent or invalid."""
    try:
        return load_result(path)
    except InvalidDocument:
        return None


def load_failure(path: Path) -> dict[str, Any] | None:
    """The failure record stored at `path`, or None when there is no file; raises
    InvalidDocument for one that is not a `FailureRecord`."""
    return _load(path, lambda document: schema_problem(document, FailureRecord))
