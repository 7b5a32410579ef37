"""Runs as Ray tasks: on an existing cluster (`address`) or on a local Ray instance it starts.

Each run asks Ray for `threads` CPUs and, when its device is CUDA, one GPU."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from clbench.executors.base import Outcome, execute
from clbench.resolution import RunSpec


@dataclass
class RayExecutor:
    address: str | None = None
    jobs: int = 1
    threads: int = 1
    log: tuple[str, ...] = ()

    def run_all(self, specs: list[RunSpec], results_dir: Path) -> Generator[Outcome, None, None]:
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.address,
                # A local instance gets the CPUs the sweep asks for; a cluster keeps its own.
                num_cpus=None if self.address else self.jobs * self.threads,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        task = ray.remote(execute)
        try:
            # Ray's stubs type a remote function by its required positional parameters only (spec,
            # results_dir): the ignore below is for the arguments after them.
            pending = [
                task.options(
                    num_cpus=self.threads, num_gpus=1 if spec.device.startswith("cuda") else 0
                ).remote(  # type: ignore[call-arg]
                    spec, str(results_dir), self.threads, log=self.log, jobs=self.jobs
                )
                for spec in specs
            ]
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                yield ray.get(finished[0])
        finally:
            if started_here:
                ray.shutdown()
