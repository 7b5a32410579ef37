"""The single-run function every executor calls, and the interface executors share."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clbench.errors import ClbenchError
from clbench.resolution import RunSpec, resolve
from clbench.runner import run
from clbench.store import write_json_atomic


@dataclass
class Outcome:
    """What became of one run: `done` (result file written) or `failed` (failure file written)."""

    name: str
    ok: bool
    seconds: float
    error: str = ""


def failure_path(results_dir: Path, name: str) -> Path:
    return Path(results_dir) / f"{name}.failed.json"


def execute(
    spec: RunSpec,
    results_dir: str | Path,
    threads: int | None = None,
    foreground: bool = False,
    log: tuple[str, ...] = (),
) -> Outcome:
    """Run `spec` and write its result into `results_dir`; on any error write
    `<name>.failed.json` with the error instead. Never raises for a failing run. `log`: the
    training logs to write (`run`)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    results_dir = Path(results_dir)
    name = resolve(spec).name
    started = time.perf_counter()
    try:
        run(spec, results_dir, show_epochs=foreground, log=log)
    except Exception as err:  # one broken run must not stop the sweep
        message = f"{type(err).__name__}: {err}"
        detail = "" if isinstance(err, ClbenchError) else traceback.format_exc()
        write_json_atomic(
            failure_path(results_dir, name),
            {"name": name, "error": message, "traceback": detail},
        )
        return Outcome(name, False, time.perf_counter() - started, message)
    failure_path(results_dir, name).unlink(missing_ok=True)
    return Outcome(name, True, time.perf_counter() - started)


class Executor(Protocol):
    """Runs specs by calling `execute` somewhere; yields each outcome as its run finishes."""

    def run_all(self, specs: list[RunSpec], results_dir: Path) -> Iterator[Outcome]: ...
