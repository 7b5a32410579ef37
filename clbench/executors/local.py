"""Runs on this machine: in the foreground (`jobs=1`) or in worker processes.

A worker that dies in a run (the out-of-memory killer sends SIGKILL) costs that run alone: it is
recorded as failed with how the worker ended, a new worker takes its place and the sweep goes on.
SIGINT and SIGTERM (`Interrupted`) stop the workers before the sweep ends: none outlives it.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path

from clbench.executors.base import Interrupted, Outcome, execute, record_failure, signal_handlers
from clbench.resolution import RunSpec, resolve


def _serve(connection: Connection) -> None:
    """A worker: run each job the sweep sends and send back its outcome, until the sweep hangs
    up."""
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        connection.send(execute(*job))


def _ended(exitcode: int | None) -> str:
    """How a worker process ended, in words."""
    if exitcode is None or exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    oom = " (as the out-of-memory killer does)" if exitcode == -signal.SIGKILL else ""
    return f"was killed by {name}{oom}"


def _worker_context() -> ForkServerContext:
    """Workers are forked from a server process that has imported the training code once and run
    nothing: no torch or thread state is inherited, and a new worker (the first ones, or one taking
    a dead worker's place) starts without importing torch and Avalanche anew (docs/performance.md,
    "Sweep workers")."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["clbench.runner", __name__])
    return context


@dataclass
class _Worker:
    """A worker process, the sweep's end of its pipe, and the run it holds (`name`, `since`)."""

    process: ForkServerProcess
    connection: Connection
    name: str = ""
    since: float = 0.0

    @classmethod
    def start(cls, context: ForkServerContext) -> _Worker:
        """A new worker. It ignores SIGINT from its start (the fork server, started with the first
        worker under that disposition, keeps it and passes it on to every fork): Ctrl-C reaches
        every process of the terminal's group, and the sweep alone handles it."""
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs,), name="clbench-worker")
        with signal_handlers(signal.SIG_IGN, signal.SIGINT):
            process.start()
        theirs.close()  # the worker holds the only other end: its death reads as end of file
        return cls(process, ours)

    def give(self, spec: RunSpec, job: tuple) -> None:
        self.name, self.since = resolve(spec).name, time.perf_counter()
        try:
            self.connection.send((spec, *job))
        except OSError:  # the worker is already dead; `outcome` reports it
            pass

    def outcome(self, results_dir: Path) -> Outcome:
        """The outcome it sent for its run; if it died in the run, the run's failure, recorded
        with how the worker ended."""
        try:
            if self.connection.poll():
                return self.connection.recv()
        except (EOFError, OSError):  # ended, or reset: it died with a job unread
            pass
        self.process.join()
        error = f"WorkerDied: its worker process {self.process.pid} {_ended(self.process.exitcode)}"
        return record_failure(results_dir, self.name, error, time.perf_counter() - self.since)

    def stop(self) -> None:
        """End the process, whatever it is doing, and wait for it."""
        self.connection.close()
        self.process.terminate()
        self.process.join()


@dataclass
class LocalExecutor:
    """`jobs` runs at a time, each with `threads` torch threads (one by default: several
    multi-threaded processes on few cores slow each other down many times over)."""

    jobs: int = 1
    threads: int = 1
    log: tuple[str, ...] = ()

    def run_all(
        self, specs: Iterable[RunSpec], results_dir: Path
    ) -> Generator[Outcome, None, None]:
        """Outcomes as runs finish. `specs` is read one run at a time, when a worker is free and
        after the outcomes before it were yielded (a tuner asks its next trial then)."""
        if self.jobs == 1:
            yield from self._foreground(specs, results_dir)
        else:
            yield from self._workers(specs, results_dir)

    def _foreground(
        self, specs: Iterable[RunSpec], results_dir: Path
    ) -> Generator[Outcome, None, None]:
        for spec in specs:
            try:
                outcome = execute(spec, results_dir, self.threads, foreground=True, log=self.log)
            except Interrupted as stop:
                stop.stopped = 1
                raise
            yield outcome

    def _workers(
        self, specs: Iterable[RunSpec], results_dir: Path
    ) -> Generator[Outcome, None, None]:
        context = _worker_context()
        job = (str(results_dir), self.threads, False, self.log, self.jobs)
        queue = iter(specs)
        idle: list[_Worker] = []
        busy: list[_Worker] = []
        try:
            while True:
                while len(busy) < self.jobs:  # one run per worker: a death costs one
                    spec = next(queue, None)
                    if spec is None:
                        break
                    worker = idle.pop() if idle else _Worker.start(context)
                    worker.give(spec, job)
                    busy.append(worker)
                if not busy:
                    return
                ready = set(wait([w.connection for w in busy] + [w.process.sentinel for w in busy]))
                for worker in [w for w in busy if {w.connection, w.process.sentinel} & ready]:
                    busy.remove(worker)
                    outcome = worker.outcome(results_dir)
                    if worker.process.is_alive():
                        idle.append(worker)
                    else:  # a new worker takes its place
                        worker.stop()
                    yield outcome
        except Interrupted as stop:
            stop.stopped = len(busy)
            raise
        finally:
            for worker in idle + busy:
                worker.stop()
