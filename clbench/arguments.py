"""Command-line parsing shared by every clbench command: one-line usage errors and the value
types that reject bad input before any work starts."""

from __future__ import annotations

import argparse
from typing import Any

from clbench.errors import ConfigError

SEED_MAX = 2**32 - 1  # numpy's and torch's generators take seeds from 0 to this


def check_seed(value: Any, where: str = "--seed") -> None:
    """One line unless `value` is an integer seed the generators accept."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ConfigError(
            f"{where} {value!r} is not a valid seed; use an integer from 0 to {SEED_MAX}"
        )


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are a single line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def summary(docstring: str | None) -> str:
    """The first paragraph of a module's docstring as one line, for a parser's description."""
    return " ".join((docstring or "").split("\n\n")[0].split())


def positive_int(text: str) -> int:
    """An integer of at least 1 (steps, repeats, threads, jobs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def seed(text: str) -> int:
    """A seed numpy's and torch's generators accept."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer seed (0 to {SEED_MAX})"
        ) from None
    try:
        check_seed(value, "seed")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def folder(text: str) -> str:
    """A non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder; give one, e.g. runs")
    return text
