"""Fixtures shared by the tests, and the set-up of parallel workers."""

import os
from collections.abc import Iterator

import pytest
from fakes import restored_registries


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker uses one torch thread: the workers share the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def registered() -> Iterator[None]:
    """Strategies and benchmarks a test registers in-process are unregistered after it."""
    with restored_registries():
        yield
