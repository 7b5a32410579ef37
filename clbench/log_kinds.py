"""The training logs a run can write (`--log`) and their check, apart from the loggers themselves
(`clbench.training_log`, built on Avalanche's): a sweep checks its runs' logs before any of them
trains, without importing the training code."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from clbench.errors import ConfigError

LOG_KINDS = ("csv", "tensorboard", "wandb")


def check_log_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """`kinds` in order without repeats; an unknown kind, or wandb without its package, is a
    `ConfigError`."""
    chosen = tuple(dict.fromkeys(kinds))
    for kind in chosen:
        if kind not in LOG_KINDS:
            raise ConfigError(f"unknown --log {kind!r}; valid: {', '.join(LOG_KINDS)}")
    if "wandb" in chosen and importlib.util.find_spec("wandb") is None:
        raise ConfigError("--log wandb needs the wandb package: pip install 'clbench[wandb]'")
    return chosen
