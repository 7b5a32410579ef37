"""Read a results folder into tables of runs; reports never train.

A run's *configuration* is everything in its spec but the seed, the data folder and the device
(the machine is checked on its own, `clbench.report.conflicts`). Runs of one strategy on one
benchmark whose configurations differ (a suite's parameter grid) are told apart by a *variant*
label naming the parameters that differ, e.g. `eps1=0.001`; a table row holds the runs of one
configuration, never of one name.

Files are read through `clbench.store`: an invalid result or failure file is left out with a line
saying why, metrics come from the accuracy matrix, and a run stored in several files (a backup
copy: the same name, configuration, code and accuracies) counts once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clbench.metrics import Curve
from clbench.store import InvalidDocument, load_failure, load_result
from clbench.strategy_info import info_of_result

NAME_PATTERN = re.compile(r"^(?P<benchmark>.+?)__(?P<strategy>.+?)__seed(?P<seed>-?\d+)__\w+$")
CONFIG_SECTIONS = ("protocol", "model_params", "strategy_params")
#: Spec fields that are not part of a run's configuration: where its data lies, which seed, and
#: the device (part of the machine, `clbench.report.conflicts`).
NOT_CONFIG = ("seed", "data_root", "device")
#: Protocol fields that decide which samples a seed's tasks hold and in which order: runs that
#: agree on them see the same data under the same seed, so their seeds pair.
DATA_FIELDS = ("data_order", "validation_split", "pc_valid", "evaluate_on")
#: The metrics of a continually evaluated run (`protocol.eval_every`); NaN for the others.
CONTINUAL_METRICS = ("min_acc", "wc_acc", "windowed_forgetting", "stability_gap")
RUN_COLUMNS = [
    "benchmark",
    "strategy",
    "seed",
    "name",
    "file",
    "acc",
    "bwt",
    "forgetting",
    "learning_accuracy",
    "average_incremental_accuracy",
    "forward_transfer",
    *CONTINUAL_METRICS,
    "curve",
    "eval_every",
    "seconds",
    "trainable_params",
    "kept_bytes",
    "matrix",
    "subspaces",
    "config",
    "config_key",
    "data_key",
    "display_name",
    "family",
    "role",
    "git_commit",
    "git_dirty",
    "harness_digest",
    "code_digest",
    "versions",
    "machine",
    "threads",
    "jobs",
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


def config_key(spec: dict[str, Any]) -> str:
    """The configuration of a run as canonical JSON: its spec without `NOT_CONFIG`."""
    return json.dumps({k: v for k, v in spec.items() if k not in NOT_CONFIG}, sort_keys=True)


def _data_key(spec: dict[str, Any]) -> str:
    protocol = spec.get("protocol", {})
    return json.dumps([spec["benchmark"], *(protocol.get(k) for k in DATA_FIELDS)])


def machine(environment: dict[str, Any]) -> str:
    """The machine a run's times were measured on: its device, and the processor with its
    kernels (CPU) or the device's name (GPU)."""
    device = environment.get("device", "?")
    if str(device).startswith("cuda"):
        return f"{environment.get('device_name', '?')} ({device})"
    kernels = environment.get("cpu_kernels")
    return f"{environment.get('cpu', '?')}" + (f" {kernels}" if kernels else "")


def _subspaces(tasks: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """{quantity: {layer: value after each task}} from the task records' `subspaces` (NaN where a
    layer has no value yet)."""
    found: dict[str, dict[str, list[float]]] = {}
    for t, task in enumerate(tasks):
        for kind, layers in task.get("subspaces", {}).items():
            for layer, size in layers.items():
                series = found.setdefault(kind, {}).setdefault(layer, [math.nan] * len(tasks))
                series[t] = float(size)
    return found


def _run_row(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    tasks = document["tasks"]
    metrics = document["metrics"]
    info = info_of_result(document)
    environment, provenance = document["environment"], document["provenance"]
    return {
        "benchmark": spec["benchmark"],
        "strategy": spec["strategy"],
        "seed": spec["seed"],
        "name": document["name"],
        "file": path.name,
        "acc": metrics["acc"],
        "bwt": metrics["bwt"],
        "forgetting": metrics["forgetting"],
        "learning_accuracy": metrics["learning_accuracy"],
        "average_incremental_accuracy": metrics.get("average_incremental_accuracy", math.nan),
        "forward_transfer": metrics.get("forward_transfer", math.nan),
        **{key: metrics.get(key, math.nan) for key in CONTINUAL_METRICS},
        "curve": Curve.of(document["continual"]) if "continual" in document else None,
        "eval_every": document.get("continual", {}).get("eval_every", 0),
        "seconds": sum(t["train_seconds"] + t["eval_seconds"] for t in tasks),
        "trainable_params": tasks[-1]["trainable_params"],
        "kept_bytes": tasks[-1]["kept_bytes"],
        "matrix": np.asarray(document["accuracy_matrix"], dtype=float),
        "subspaces": _subspaces(tasks),
        "config": _flat_config(spec),
        "config_key": config_key(spec),
        "data_key": _data_key(spec),
        "display_name": info.display_name,
        "family": info.family,
        "role": info.role,
        "git_commit": provenance.get("git_commit"),
        "git_dirty": provenance.get("git_dirty"),
        "harness_digest": provenance.get("harness_digest"),
        "code_digest": provenance.get("code_digest"),
        "versions": json.dumps(environment.get("versions", {}), sort_keys=True),
        "machine": machine(environment),
        "threads": environment.get("threads"),
        "jobs": environment.get("jobs"),
    }


def _value_text(value: Any) -> str:
    return "(unset)" if isinstance(value, float) and math.isnan(value) else str(value)


def _variant_texts(
    values: dict[Hashable, dict[str, Any]], text: Callable[[Any], str]
) -> dict[Hashable, str]:
    """Each run's variant label: its differing parameters `name=value`, values shown by `text`."""
    return {
        i: ", ".join(f"{c.split('.', 1)[-1]}={text(v)}" for c, v in row.items())
        for i, row in values.items()
    }


def _label_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `variant` (the parameters in which a run's configuration differs from the other
    configurations of its strategy on its benchmark, as text) and `varied` ({parameter: value});
    every configuration gets its own label."""
    variants, varied = {}, {}
    for _, group in runs.groupby(["benchmark", "strategy"], sort=False):
        configs = pd.DataFrame(list(group["config"]), index=group.index)
        differing = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
        values = {i: {c: configs.at[i, c] for c in differing} for i in group.index}
        labels = _variant_texts(values, _value_text)
        if len(set(labels.values())) != group["config_key"].nunique():
            labels = _variant_texts(values, json.dumps)  # json tells 1 from "1" where both occur
        variants.update(labels)
        varied.update(values)
    runs = runs.copy()
    runs["variant"] = pd.Series(variants)
    runs["varied"] = pd.Series(varied)
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


def _once(
    loaded: list[tuple[Path, dict[str, Any]]], unreadable: list[str]
) -> list[tuple[Path, dict[str, Any]]]:
    """One result per run: files that hold the same configuration and seed, made by the same
    code, with the same accuracy matrix, are one run stored twice (a backup copy). The file named
    after the run is kept, else the first by file name; a line in `unreadable` names each copy
    left out. Runs of one configuration and seed that differ otherwise are all kept (and
    reported as a conflict, `clbench.report.conflicts`)."""
    first: dict[str, Path] = {}
    kept = []
    for path, document in sorted(loaded, key=lambda p_d: (p_d[0].stem != p_d[1]["name"], p_d[0])):
        identity = json.dumps(
            [
                config_key(document["spec"]),
                document["spec"]["seed"],
                document["provenance"].get("code_digest"),
                document["accuracy_matrix"],
            ]
        )
        if identity in first:
            unreadable.append(f"{path.name}: the same run as {first[identity].name}, counted once")
            continue
        first[identity] = path
        kept.append((path, document))
    return kept


def collect(results_dir: Path) -> Collected:
    """Every valid result under `results_dir` (each run once), failures, files left out and
    missing seeds."""
    results_dir = Path(results_dir)
    unreadable: list[str] = []
    paths = sorted(results_dir.glob("*.json"))
    failures = [p for p in paths if p.name.endswith(".failed.json")]
    results = [p for p in paths if not p.name.endswith(".failed.json")]
    loaded = _once(_load_all(results, load_result, unreadable), unreadable)
    rows = [_run_row(path, document) for path, document in loaded]
    failed = [_failure(d) for _, d in _load_all(failures, load_failure, unreadable)]
    done = {f["name"] for f in failed} & {r["name"] for r in rows}
    failed = [f for f in failed if f["name"] not in done]
    runs = _label_variants(pd.DataFrame(rows)) if rows else pd.DataFrame(columns=RUN_COLUMNS)
    return Collected(runs=runs, failed=failed, unreadable=unreadable, missing=_missing(runs))


def _missing(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Seeds that a configuration lacks while other configurations of its benchmark have them."""
    missing: list[dict[str, Any]] = []
    if runs.empty:
        return missing
    for benchmark, bench_runs in runs.groupby("benchmark"):
        seeds = set(bench_runs["seed"])
        for _, group in bench_runs.groupby("config_key", sort=False):
            strategy, variant = group["strategy"].iloc[0], group["variant"].iloc[0]
            for seed in sorted(seeds - set(group["seed"])):
                missing.append(
                    {"benchmark": benchmark, "strategy": strategy, "variant": variant, "seed": seed}
                )
    return missing
