"""Benchmarks: the registry of builders (entry-point group `clbench.benchmarks`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from clbench.data.benchmark import BenchmarkBuilder, DataOptions, TaskData, TaskSequence
from clbench.errors import ConfigError
from clbench.registry import Registry, docstring_summary

BUILDER_HINT = "def builder(options: DataOptions) -> TaskSequence"


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark builder and its one-line summary."""

    name: str
    build: BenchmarkBuilder
    summary: str


def benchmark_from_builder(name: str, builder: object) -> Benchmark:
    """Check that `builder` takes exactly one argument (the `DataOptions`)."""
    if not callable(builder) or len(inspect.signature(builder).parameters) != 1:
        raise ConfigError(f"benchmark {name!r}: {builder!r} does not match {BUILDER_HINT}")
    summary = docstring_summary(builder)
    return Benchmark(name=name, build=builder, summary=summary)


BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark", "clbench.benchmarks", benchmark_from_builder
)


def register_benchmark(name: str, builder: BenchmarkBuilder) -> Benchmark:
    """Register a benchmark builder in-process (a script or notebook)."""
    return BENCHMARKS.register(name, builder)


__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "DataOptions",
    "TaskData",
    "TaskSequence",
    "register_benchmark",
]
