"""Readers of the training logs a run writes with `--log csv`, shared by the log and executor
tests."""

import csv
from collections import defaultdict
from pathlib import Path


def read_csv(path: Path) -> dict[str, list[tuple[int, float]]]:
    """`metrics.csv` as {name: [(x, value), ...]} in file order."""
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["x", "name", "value"]
    series = defaultdict(list)
    for x, name, value in rows[1:]:
        series[name].append((int(x), float(value)))
    return series


def values(series, name):
    return [value for _, value in series[name]]
