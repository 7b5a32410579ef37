"""Fixtures shared by the tests, and the set-up of parallel workers."""

import os
import sys
from collections.abc import Iterator

import pytest

#: What sizes the thread pools of OpenMP (torch), OpenBLAS (numpy, scipy) and MKL when they load.
POOL_SIZES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process a test starts, gets pools of one thread:
    the workers share the cores, and pools of several threads each, whose threads spin while they
    wait, slow each other down. This runs before any test module loads numpy or torch (this file
    imports neither at its top)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        loaded = sorted({"numpy", "torch"} & set(sys.modules))
        if loaded:
            raise pytest.UsageError(f"{', '.join(loaded)} loaded before the pools were sized")
        for name in POOL_SIZES:
            os.environ.setdefault(name, "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow first, each group in its order of collection: under pytest-xdist the
    long tests start while the short ones can still fill the gaps, so no worker is left running a
    long test alone at the end. Every worker collects the same order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def registered() -> Iterator[None]:
    """Strategies and benchmarks a test registers in-process are unregistered after it."""
    from fakes import restored_registries

    with restored_registries():
        yield
