"""Read a results folder into tables of runs; reports never train.

A run's *configuration* is everything in its spec but the seed. Runs of one strategy on one
benchmark whose configurations differ (a suite's parameter grid) are told apart by a *variant*
label naming the parameters that differ, e.g. `eps1=0.001`.

Files are read through `clbench.store`: an invalid result or failure file is left out with a line
saying why, metrics come from the accuracy matrix, and a run stored in several files (a backup
copy) counts once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clbench.store import InvalidDocument, load_failure, load_result

NAME_PATTERN = re.compile(r"^(?P<benchmark>.+?)__(?P<strategy>.+?)__seed(?P<seed>-?\d+)__\w+$")
CONFIG_SECTIONS = ("protocol", "model_params", "strategy_params")
RUN_COLUMNS = [
    "benchmark",
    "strategy",
    "seed",
    "name",
    "acc",
    "bwt",
    "forgetting",
    "learning_accuracy",
    "seconds",
    "trainable_params",
    "kept_bytes",
    "matrix",
    "subspaces",
    "config",
    "variant",
    "varied",
]


@dataclass
class Collected:
    """The runs of a results folder, and what could not be used: `unreadable` holds a
    `file: why` line for each file left out (invalid, or a copy of a run already counted)."""

    runs: pd.DataFrame
    failed: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)


def _flat_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's parameters as `section.field` keys (the model name included), seed excluded."""
    flat = {"model": spec.get("model")}
    for section in CONFIG_SECTIONS:
        for key, value in spec.get(section, {}).items():
            flat[f"{section}.{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


#: Per-layer sizes a result's task records may hold, by the quantity they measure.
SUBSPACE_KINDS = {"basis_sizes": "kept basis size", "null_space_rank": "null-space rank"}


def _subspaces(tasks: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """{quantity: {layer: value after each task}} from the task records (NaN where a layer has
    no value yet); NESS records its null-space rank inside `null_space`."""
    found: dict[str, dict[str, list[float]]] = {}
    for t, task in enumerate(tasks):
        sizes = {kind: task.get(key, {}) for key, kind in SUBSPACE_KINDS.items()}
        if "null_space" in task:
            sizes["null-space rank"] = {k: v["rank"] for k, v in task["null_space"].items()}
        for kind, layers in sizes.items():
            for layer, size in layers.items():
                series = found.setdefault(kind, {}).setdefault(layer, [math.nan] * len(tasks))
                series[t] = float(size)
    return found


def _run_row(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    tasks = document["tasks"]
    metrics = document["metrics"]
    return {
        "benchmark": spec["benchmark"],
        "strategy": spec["strategy"],
        "seed": spec["seed"],
        "name": document["name"],
        "acc": metrics["acc"],
        "bwt": metrics["bwt"],
        "forgetting": metrics["forgetting"],
        "learning_accuracy": metrics["learning_accuracy"],
        "seconds": sum(t["train_seconds"] + t["eval_seconds"] for t in tasks),
        "trainable_params": tasks[-1]["trainable_params"],
        "kept_bytes": tasks[-1]["kept_bytes"],
        "matrix": np.asarray(document["accuracy_matrix"], dtype=float),
        "subspaces": _subspaces(tasks),
        "config": _flat_config(spec),
    }


def _label_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `variant` (differing parameters as text) and `varied` ({parameter: value})."""
    variants, varied = [], []
    for _, group in runs.groupby(["benchmark", "strategy"], sort=False):
        configs = pd.DataFrame(list(group["config"]), index=group.index)
        differing = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
        for index in group.index:
            values = {c: configs.at[index, c] for c in differing}
            label = ", ".join(f"{c.split('.', 1)[-1]}={v}" for c, v in values.items())
            variants.append((index, label))
            varied.append((index, values))
    runs = runs.copy()
    runs["variant"] = pd.Series(dict(variants))
    runs["varied"] = pd.Series(dict(varied))
    return runs


def _failure(document: dict[str, Any]) -> dict[str, Any]:
    """A failure record (`clbench.store.FailureRecord`) as a row of failures."""
    match = NAME_PATTERN.match(document["name"])
    parts = match.groupdict() if match else {"benchmark": "?", "strategy": "?", "seed": "?"}
    return {**parts, "name": document["name"], "error": document["error"]}


def _load_all(
    paths: list[Path], load: Callable[[Path], dict[str, Any] | None], unreadable: list[str]
) -> list[tuple[Path, dict[str, Any]]]:
    """Each path with its document as `load` reads it; a `file: why` line in `unreadable` for
    each invalid one."""
    loaded = []
    for path in paths:
        try:
            document = load(path)
        except InvalidDocument as err:
            unreadable.append(f"{path.name}: {err.why}")
            continue
        if document is not None:  # None: removed since the folder was listed
            loaded.append((path, document))
    return loaded


def _once(loaded: list[tuple[Path, dict[str, Any]]], unreadable: list[str]) -> list[dict[str, Any]]:
    """One result per run: results with the same `name`, or the same configuration and seed,
    are one run stored twice (a backup copy). The file named after the run is kept, else the
    first by file name; a line in `unreadable` names each copy left out."""
    first: dict[tuple[str, str], Path] = {}
    kept = []
    for path, document in sorted(loaded, key=lambda p_d: (p_d[0].stem != p_d[1]["name"], p_d[0])):
        spec = {key: value for key, value in document["spec"].items() if key != "data_root"}
        keys = [("name", document["name"]), ("config", json.dumps(spec, sort_keys=True))]
        counted = next((first[key] for key in keys if key in first), None)
        if counted is not None:
            unreadable.append(f"{path.name}: the same run as {counted.name}, counted once")
            continue
        first.update(dict.fromkeys(keys, path))
        kept.append(document)
    return kept


def collect(results_dir: Path) -> Collected:
    """Every valid result under `results_dir` (each run once), failures, files left out and
    missing seeds."""
    results_dir = Path(results_dir)
    unreadable: list[str] = []
    paths = sorted(results_dir.glob("*.json"))
    failures = [p for p in paths if p.name.endswith(".failed.json")]
    results = [p for p in paths if not p.name.endswith(".failed.json")]
    rows = [_run_row(d) for d in _once(_load_all(results, load_result, unreadable), unreadable)]
    failed = [_failure(d) for _, d in _load_all(failures, load_failure, unreadable)]
    done = {f["name"] for f in failed} & {r["name"] for r in rows}
    failed = [f for f in failed if f["name"] not in done]
    runs = _label_variants(pd.DataFrame(rows)) if rows else pd.DataFrame(columns=RUN_COLUMNS)
    return Collected(runs=runs, failed=failed, unreadable=unreadable, missing=_missing(runs))


def _missing(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Seeds that a configuration lacks while other configurations of its benchmark have them."""
    missing = []
    if runs.empty:
        return missing
    for benchmark, bench_runs in runs.groupby("benchmark"):
        seeds = set(bench_runs["seed"])
        for (strategy, variant), group in bench_runs.groupby(["strategy", "variant"]):
            for seed in sorted(seeds - set(group["seed"])):
                missing.append(
                    {"benchmark": benchmark, "strategy": strategy, "variant": variant, "seed": seed}
                )
    return missing
