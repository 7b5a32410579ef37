"""Runs as a SLURM job array through submitit; `cluster="local"` runs the same jobs as local
processes (submitit's own test mode) without a scheduler."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from clbench.executors.base import Outcome, execute
from clbench.resolution import RunSpec, resolve


@dataclass
class SubmititExecutor:
    cluster: str = "slurm"
    jobs: int = 1
    threads: int = 1
    partition: str | None = None
    timeout_min: int = 240
    log: tuple[str, ...] = ()

    def run_all(self, specs: list[RunSpec], results_dir: Path) -> Generator[Outcome, None, None]:
        import submitit

        if not specs:
            return
        executor = submitit.AutoExecutor(
            folder=Path(results_dir) / ".submitit", cluster=self.cluster
        )
        gpus = 1 if any(spec.device.startswith("cuda") for spec in specs) else 0
        executor.update_parameters(
            timeout_min=self.timeout_min,
            cpus_per_task=self.threads,
            gpus_per_node=gpus,
            slurm_array_parallelism=self.jobs,
            **({"slurm_partition": self.partition} if self.partition else {}),
        )
        n = len(specs)
        jobs = executor.map_array(
            execute,
            specs,
            [str(results_dir)] * n,
            [self.threads] * n,
            [False] * n,  # foreground
            [self.log] * n,
            [self.jobs] * n,
        )
        names = {job.job_id: resolve(spec).name for job, spec in zip(jobs, specs, strict=True)}
        for job in submitit.helpers.as_completed(jobs):
            try:
                yield job.result()
            except Exception as err:  # the job itself died (killed, out of memory, timeout)
                error = f"job {job.job_id}: {type(err).__name__}: {err}"
                yield Outcome(names[job.job_id], False, 0.0, error)
