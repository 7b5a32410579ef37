"""The single-run function every executor calls, and the interface executors share."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from clbench.errors import ClbenchError
from clbench.resolution import RunSpec, resolve
from clbench.store import failure_path, write_failure


@dataclass
class Outcome:
    """What became of one run: `done` (result file written) or `failed` (failure file written)."""

    name: str
    ok: bool
    seconds: float
    error: str = ""


def record_failure(
    results_dir: Path, name: str, error: str, seconds: float, detail: str = ""
) -> Outcome:
    """Write `<name>.failed.json` (`clbench.store.write_failure`); the run's failed outcome."""
    write_failure(results_dir, name, error, detail)
    return Outcome(name, False, seconds, error)


def execute(
    spec: RunSpec,
    results_dir: str | Path,
    threads: int | None = None,
    foreground: bool = False,
    log: tuple[str, ...] = (),
    jobs: int = 1,
) -> Outcome:
    """Run `spec` and write its result into `results_dir`; on any error write
    `<name>.failed.json` with the error instead. Never raises for a failing run. `log`: the
    training logs to write; `jobs`: the runs the sweep runs at a time, which the result records
    (`run`)."""
    from clbench.runner import run  # the training code (Avalanche): in the process that trains

    if threads:
        import torch

        torch.set_num_threads(threads)
    results_dir = Path(results_dir)
    name = resolve(spec).name
    started = time.perf_counter()
    try:
        run(spec, results_dir, show_epochs=foreground, log=log, jobs=jobs)
    except Exception as err:  # one broken run must not stop the sweep
        message = f"{type(err).__name__}: {err}"
        detail = "" if isinstance(err, ClbenchError) else traceback.format_exc()
        return record_failure(results_dir, name, message, time.perf_counter() - started, detail)
    failure_path(results_dir, name).unlink(missing_ok=True)
    return Outcome(name, True, time.perf_counter() - started)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a sweep. A KeyboardInterrupt, so that no `except Exception`
    around a run records it as the run's failure; its text is the line the CLI prints. The sweep
    sets `total`, `finished` and `failed`; the executor sets `stopped`, the runs it cut short."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.total = self.finished = self.failed = self.stopped = 0

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by the signal

    def __str__(self) -> str:
        failed = f" ({self.failed} failed)" if self.failed else ""
        return (
            f"interrupted by {signal.Signals(self.signum).name}: {self.finished} of {self.total} "
            f"runs finished{failed}, {self.stopped} stopped; re-run the same command to resume"
        )


Handler = Callable[[int, FrameType | None], object] | int


@contextmanager
def signal_handlers(handler: Handler, *signums: int) -> Iterator[None]:
    """`handler` for `signums` within, the previous handlers after. Only the main thread may set
    handlers (Python runs them there); in any other thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second signal must not cut the cleanup short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def interruptible() -> AbstractContextManager[None]:
    """Within: SIGINT (Ctrl-C) and SIGTERM raise `Interrupted`, once; later ones are ignored."""
    return signal_handlers(_interrupt, signal.SIGINT, signal.SIGTERM)


class Executor(Protocol):
    """Runs specs by calling `execute` somewhere; yields each outcome as its run finishes. An
    `Interrupted` raised while it waits, or thrown in at a `yield`, must come out again; an
    executor that stops the runs in progress counts them in its `stopped` first."""

    def run_all(
        self, specs: list[RunSpec], results_dir: Path
    ) -> Generator[Outcome, None, None]: ...
