"""Executors: where the runs of a sweep execute. All call `clbench.executors.base.execute`."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from clbench.errors import ConfigError
from clbench.executors.base import Executor, Outcome, execute
from clbench.log_kinds import check_log_kinds

EXECUTORS = {"local": None, "ray": ("ray", "ray"), "submitit": ("submitit", "slurm")}


@dataclass
class ExecutorOptions:
    name: str = "local"
    jobs: int = 1
    threads: int = 1
    address: str | None = None
    submitit_cluster: str = "slurm"
    partition: str | None = None
    timeout_min: int = 240
    log: tuple[str, ...] = ()  # training logs of every run (`clbench.training_log`)


def make_executor(options: ExecutorOptions) -> Executor:
    """The executor `options.name` names; a missing optional package is a one-line error."""
    log = check_log_kinds(options.log)
    if options.name not in EXECUTORS:
        raise ConfigError(f"unknown executor {options.name!r}; valid: {', '.join(EXECUTORS)}")
    if options.jobs < 1 or options.threads < 1:
        raise ConfigError(
            f"--jobs {options.jobs} / --threads {options.threads}: both must be at least 1"
        )
    needs = EXECUTORS[options.name]
    if needs and importlib.util.find_spec(needs[0]) is None:
        raise ConfigError(
            f"executor {options.name!r} needs the {needs[0]} package: "
            f"pip install 'clbench[{needs[1]}]'"
        )
    if options.name == "ray":
        from clbench.executors.ray_cluster import RayExecutor

        return RayExecutor(options.address, options.jobs, options.threads, log)
    if options.name == "submitit":
        if options.submitit_cluster not in ("slurm", "local"):
            raise ConfigError(f"submitit cluster {options.submitit_cluster!r}; valid: slurm, local")
        from clbench.executors.slurm import SubmititExecutor

        return SubmititExecutor(
            options.submitit_cluster,
            options.jobs,
            options.threads,
            options.partition,
            options.timeout_min,
            log,
        )
    from clbench.executors.local import LocalExecutor

    return LocalExecutor(options.jobs, options.threads, log)


__all__ = ["EXECUTORS", "Executor", "ExecutorOptions", "Outcome", "execute", "make_executor"]
