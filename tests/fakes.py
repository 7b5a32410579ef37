"""Stand-ins shared by the tests: a strategy that plugins' hooks can be called with outside a
training run, the registries restored after in-process registrations, and outside packages
installed where only the subprocesses that ask for them see them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from torch import nn

from clbench.data import BENCHMARKS
from clbench.strategies import STRATEGIES


def fake_strategy(model: nn.Module, task: int = 0, **attributes: Any) -> SimpleNamespace:
    """What a plugin's hooks read of the training template: the model, the clock at task index
    `task` (`StrategyPlugin.task_index`) and any further `attributes` (protocol, device, ...)."""
    return SimpleNamespace(model=model, clock=SimpleNamespace(train_exp_counter=task), **attributes)


@contextmanager
def restored_registries() -> Iterator[None]:
    """Strategies and benchmarks registered in-process inside the block are gone after it: both
    registries return to their entries (and broken entries) from before."""
    saved = [
        (registry, dict(registry._entries), dict(registry._broken), registry._loaded)
        for registry in (STRATEGIES, BENCHMARKS)
    ]
    try:
        yield
    finally:
        for registry, entries, broken, loaded in saved:
            registry._entries = entries
            registry._broken = broken
            registry._loaded = loaded


def installed_apart(package: Path, site: Path) -> dict[str, str]:
    """Install the outside `package` into the folder `site`, not into this environment, and return
    the environment under which a subprocess imports it and finds its entry points. Tests running
    in parallel share the environment; a package installed there would join every worker's
    registry while it is installed (a strategy in another test's listing)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "-q", "install", "--no-build-isolation", "--no-deps",
         "--target", str(site), str(package)],
        check=True, capture_output=True,
    )  # fmt: skip
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
