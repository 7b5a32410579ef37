"""Result files: one JSON document per run, written atomically, validated when read."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from clbench.errors import ClbenchError

RESULT_FORMAT = 2  # 2: accuracies and metrics in percent (1: fractions)
REQUIRED_KEYS = ("format", "name", "spec", "accuracy_matrix", "metrics", "tasks", "environment")


def ensure_writable(folder: Path) -> None:
    """Create `folder` if needed and check that files can be written there, before any work."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", delete=True)
        probe.close()
    except OSError as err:
        raise ClbenchError(f"cannot write results to {folder}: {err.strerror or err}") from None


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it into place:
    readers see either the old file or the complete new one, never a partial write."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise ClbenchError(f"cannot write results to {path.parent}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=1, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate_result(document: Any) -> str | None:
    """Why `document` is not a complete result, or None when it is."""
    if not isinstance(document, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        return f"missing {', '.join(missing)}"
    if document["format"] != RESULT_FORMAT:
        return f"format {document['format']} (expected {RESULT_FORMAT})"
    matrix = document["accuracy_matrix"]
    if not isinstance(matrix, list) or not matrix or any(len(r) != len(matrix) for r in matrix):
        return "accuracy_matrix is not square"
    for row in matrix:
        for value in row:
            if (
                not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 <= value <= 100
            ):
                return f"accuracy {value!r} is not a percentage in [0, 100]"
    if len(document["tasks"]) != len(matrix):
        return "tasks and accuracy_matrix disagree on the number of tasks"
    return None


def read_result(path: Path) -> dict[str, Any] | None:
    """The result stored at `path`, or None when it is absent, truncated or invalid."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return None if validate_result(document) else document
