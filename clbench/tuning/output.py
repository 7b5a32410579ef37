"""What a tuning leaves in its results folder: `summary.json` (one entry per study: budget,
sampler, objective, the presets' score and the best, the best settings), `trials.csv` (every
trial: its study, state, score, values and seconds) and `tuned.toml`, a suite that runs every
tuned strategy at its best settings on the test split (`clbench sweep`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clbench.resolution import OWN_PROTOCOL_PREFIX
from clbench.store import write_json_atomic, write_replacing
from clbench.tuning.objective import shown_score

if TYPE_CHECKING:
    import optuna

TEST_SEEDS = (0, 1, 2)
HEADER = "# Written by `clbench tune`"


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """One study in numbers: its trials by state, the first trial's score (the presets) and the
    best trial's, its settings and the seconds its runs took."""
    import optuna

    attrs = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    first = next((t for t in complete if t.number == 0), None)
    best = max(complete, key=lambda t: float(t.value or 0.0)) if complete else None
    return {
        "benchmark": attrs["benchmark"],
        "strategy": attrs["strategy"],
        "suite": attrs.get("suite", ""),
        "objective": attrs["objective"],
        "sampler": attrs["sampler"],
        "pruner": "none: every trial trains the whole sequence",
        "seeds": attrs["seeds"],
        "space": attrs["space"],
        "finished": len(complete) + len(failed),
        "failed": len(failed),
        "failures": {str(t.number + 1): t.user_attrs.get("error", "") for t in failed},
        "preset_score": first.value
        if first is not None and first.state == optuna.trial.TrialState.COMPLETE
        else None,
        "best_score": best.value if best is not None else None,
        "best_trial": best.number + 1 if best is not None else None,
        "best_settings": best.user_attrs.get("settings", {}) if best is not None else {},
        "base_overrides": attrs.get("base_overrides", {}),
        "base_protocol": attrs.get("base_protocol", {}),
        "seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in trials), 1),
    }


def write_outputs(results: Path, storage: optuna.storages.BaseStorage) -> dict[str, Any]:
    """Summaries of every study in `storage` and the tuned suite, written into `results`."""
    import optuna

    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    summary = {
        name: study_summary(optuna.load_study(study_name=name, storage=storage)) for name in names
    }
    write_json_atomic(results / "summary.json", {"studies": summary})
    rows = [
        {
            "study": name,
            "trial": t.number + 1,
            "state": t.state.name,
            "score": t.value,
            "seconds": t.user_attrs.get("seconds"),
            **t.params,
        }
        for name in names
        for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    ]
    write_replacing(results / "trials.csv", lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    text = tuned_suite(summary)
    write_replacing(results / "tuned.toml", lambda tmp: Path(tmp).write_text(text))
    return summary


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def _key(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() else json.dumps(name)


def tuned_suite(summary: dict[str, dict[str, Any]], seeds: tuple[int, ...] = TEST_SEEDS) -> str:
    """The suite of every study with a best trial: each benchmark's base protocol, and per
    strategy its base settings with the best trial's on top (`clbench sweep tuned.toml`)."""
    studies = [s for s in summary.values() if s["best_trial"] is not None]
    benchmarks = sorted({s["benchmark"] for s in studies})
    strategies = list(dict.fromkeys(s["strategy"] for s in studies))
    lines = [
        f"{HEADER}: every strategy at the best settings its study found on the",
        "# validation split; `clbench sweep` runs it on the test split, on seeds the trials never",
        "# trained. Budgets, objectives and scores: summary.json beside this file.",
        f"benchmarks = {_toml_value(benchmarks)}",
        f"strategies = {_toml_value(strategies)}",
        f"seeds = {_toml_value(list(seeds))}",
    ]
    for benchmark in benchmarks:
        mine = [s for s in studies if s["benchmark"] == benchmark]
        protocol: dict[str, Any] = {}
        for study in mine:
            protocol.update(study["base_overrides"].get("protocol", {}))
            protocol.update(study["base_protocol"])
        lines += ["", f"[presets.{_key(benchmark)}]"]
        if protocol:
            lines.append(f"protocol = {_toml_value(protocol)}")
        for study in mine:
            strategy = study["strategy"]
            values = {**study["base_overrides"].get(strategy, {}), **study["best_settings"]}
            own = {
                k.removeprefix(OWN_PROTOCOL_PREFIX): v
                for k, v in values.items()
                if k.startswith(OWN_PROTOCOL_PREFIX)
            }
            fields = {k: v for k, v in values.items() if not k.startswith(OWN_PROTOCOL_PREFIX)}
            lines.append(
                f"# {strategy}: trial {study['best_trial']} of {study['finished']}, "
                f"{study['objective']} {study['best_score']:.2f} "
                f"(presets {shown_score(study['preset_score'], 'failed')})"
            )
            if fields:
                lines.append(f"strategies.{_key(strategy)} = {_toml_value(fields)}")
            if own:
                lines.append(f"strategy_protocol.{_key(strategy)} = {_toml_value(own)}")
    return "\n".join(lines) + "\n"
