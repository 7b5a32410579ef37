"""Read a results folder into tables of runs; reports never train.

A run's *configuration* is everything in its spec but the seed. Runs of one strategy on one
benchmark whose configurations differ (a suite's parameter grid) are told apart by a *variant*
label naming the parameters that differ, e.g. `eps1=0.001`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clbench.store import read_result, validate_result

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
    """The runs of a results folder, and what could not be used."""

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


def _failure(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    name = document.get("name", path.name.removesuffix(".failed.json"))
    match = NAME_PATTERN.match(name)
    parts = match.groupdict() if match else {"benchmark": "?", "strategy": "?", "seed": "?"}
    return {**parts, "name": name, "error": document.get("error", "unreadable failure file")}


def collect(results_dir: Path) -> Collected:
    """Every valid result under `results_dir`, failures, unreadable files and missing seeds."""
    results_dir = Path(results_dir)
    rows, unreadable = [], []
    for path in sorted(results_dir.glob("*.json")):
        if path.name.endswith(".failed.json"):
            continue
        document = read_result(path)
        if document is None:
            try:
                why = validate_result(json.loads(path.read_text()))
            except (OSError, ValueError) as err:
                why = f"not valid JSON ({type(err).__name__})"
            unreadable.append(f"{path.name}: {why}")
            continue
        rows.append(_run_row(document))
    failed = [_failure(p) for p in sorted(results_dir.glob("*.failed.json"))]
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
