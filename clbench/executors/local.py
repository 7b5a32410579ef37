"""Runs on this machine: in the foreground (`jobs=1`) or in a pool of worker processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from clbench.executors.base import Outcome, execute
from clbench.resolution import RunSpec


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@dataclass
class LocalExecutor:
    """`jobs` runs at a time, each with `threads` torch threads (one by default: several
    multi-threaded processes on few cores slow each other down many times over)."""

    jobs: int = 1
    threads: int = 1
    log: tuple[str, ...] = ()

    def run_all(self, specs: list[RunSpec], results_dir: Path) -> Iterator[Outcome]:
        if self.jobs == 1:
            for spec in specs:
                yield execute(spec, results_dir, self.threads, foreground=True, log=self.log)
            return
        context = multiprocessing.get_context("spawn")  # no forked torch or thread state
        with ProcessPoolExecutor(
            self.jobs, mp_context=context, initializer=_limit_threads, initargs=(self.threads,)
        ) as pool:
            queue = list(specs)
            running = set()
            while queue or running:
                while queue and len(running) < self.jobs:  # submit lazily: a kill loses little
                    running.add(
                        pool.submit(execute, queue.pop(0), results_dir, self.threads, log=self.log)
                    )
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
