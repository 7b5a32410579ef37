"""The tuning section of a report (`clbench report RESULTS --tuning DIR`): per benchmark and tuned
strategy, the budget its study had, its validation score at the presets (the study's first trial)
and at its best trial, and the test accuracy of both configurations, the presets' from the
report's own runs and the tuned one from the tuned suite's runs (`DIR/runs`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clbench.errors import ClbenchError
from clbench.report.collect import collect
from clbench.report.figures import Drawn
from clbench.report.text import markdown
from clbench.strategies import STRATEGIES
from clbench.tuning.objective import shown_score

COLUMNS = {
    "label": "Strategy",
    "trials": "Trials (failed)",
    "valid_presets": "Valid. presets",
    "valid_tuned": "Valid. tuned",
    "test_presets": "Test ACC presets",
    "test_tuned": "Test ACC tuned",
}


@dataclass
class TuningTable:
    """One benchmark's comparison: the numbers (`frame`), its Markdown and its caption."""

    benchmark: str
    frame: pd.DataFrame
    markdown: str
    caption: str


def load_summary(folder: Path) -> dict[str, dict[str, Any]]:
    """The studies of a tuning folder (`summary.json`, written by `clbench tune`)."""
    path = folder / "summary.json"
    try:
        studies = json.loads(path.read_text())["studies"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ClbenchError(
            f"--tuning {folder}: no readable summary.json ({type(err).__name__}); "
            "give the --results folder of clbench tune"
        ) from None
    if not isinstance(studies, dict):
        raise ClbenchError(f"--tuning {folder}: summary.json holds no studies")
    return studies


def _variant(strategy: str, config: dict[str, Any]) -> Any:
    """The value of the field that selects a strategy's parameter class (GPCNS's `base`)."""
    known = dict(STRATEGIES.items())
    selector = known[strategy].selector if strategy in known else None
    return config.get(f"strategy_params.{selector}") if selector else None


def _test_runs(runs: pd.DataFrame, benchmark: str, strategy: str, variant: Any) -> pd.DataFrame:
    mine = runs[(runs["benchmark"] == benchmark) & (runs["strategy"] == strategy)]
    if variant is None or mine.empty:
        return mine
    return mine[[_variant(strategy, c) == variant for c in mine["config"]]]


def _label(strategy: str) -> str:
    """A strategy's display name where no run of the report shows it."""
    known = dict(STRATEGIES.items())
    return known[strategy].info.display_name if strategy in known else strategy


def _mean_std(values: pd.Series) -> str:
    if values.empty:
        return "-"
    spread = f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else ""
    return f"{values.mean():.2f}{spread} ({len(values)})"


def tuning_tables(
    studies: dict[str, dict[str, Any]], presets_runs: pd.DataFrame, tuned_runs: pd.DataFrame
) -> list[TuningTable]:
    """Per benchmark, a row per study: its budget, validation scores and test ACC (mean ± std
    over the test seeds, their count in brackets) at the presets and tuned."""
    tables = []
    for benchmark in sorted({s["benchmark"] for s in studies.values()}):
        rows = []
        mine = [s for s in studies.values() if s["benchmark"] == benchmark]
        for study in mine:
            strategy = study["strategy"]
            tuned = _test_runs(tuned_runs, benchmark, strategy, None)
            variant = _variant(strategy, tuned["config"].iloc[0]) if not tuned.empty else None
            presets = _test_runs(presets_runs, benchmark, strategy, variant)
            rows.append(
                {
                    "strategy": strategy,
                    "label": presets["label"].iloc[0] if not presets.empty else _label(strategy),
                    "order": presets["row"].min() if not presets.empty else len(presets_runs),
                    "trials": f"{study['finished']} ({study['failed']})",
                    "valid_presets": study["preset_score"],
                    "valid_tuned": study["best_score"],
                    "test_presets": _mean_std(presets["acc"]),
                    "test_tuned": _mean_std(tuned["acc"]),
                    "test_presets_mean": presets["acc"].mean() if not presets.empty else None,
                    "test_tuned_mean": tuned["acc"].mean() if not tuned.empty else None,
                }
            )
        frame = pd.DataFrame(rows).sort_values(["order", "strategy"], kind="stable")
        frame = frame.drop(columns="order").reset_index(drop=True)
        budgets = sorted({s["finished"] for s in mine})
        objective = "; ".join(sorted({s["objective"] for s in mine}))
        seeds = sorted({str(seed) for s in mine for seed in s["seeds"]})
        caption = (
            f"{benchmark}: every strategy tuned with the same budget of "
            f"{'/'.join(map(str, budgets))} finished trials ({mine[0]['sampler']}; no pruning), "
            f"objective {objective} on the validation split, trials trained on seed "
            f"{', '.join(seeds)}. Valid.: the objective at the presets (the study's first trial) "
            "and at the best trial; Test ACC: mean ± std over the test seeds (their count in "
            "brackets), at the presets (the report's runs) and tuned (the tuned suite's runs)."
        )
        shown = frame[list(COLUMNS)].rename(columns=COLUMNS)
        for column in ("Valid. presets", "Valid. tuned"):
            shown[column] = [shown_score(v if pd.notna(v) else None) for v in shown[column]]
        cells = shown.map(lambda cell: markdown(str(cell)))
        text = cells.to_markdown(index=False, disable_numparse=True)
        tables.append(TuningTable(benchmark, frame, f"{text}\n\n{caption}", caption))
    return tables


def tuning_figure(table: TuningTable) -> Drawn:
    """Test ACC at the presets and tuned, a line per strategy from one to the other."""
    frame = table.frame.dropna(subset=["test_presets_mean", "test_tuned_mean"])
    frame = frame.sort_values("test_tuned_mean")
    height = 1.0 + 0.3 * max(len(frame), 1)
    figure, axes = plt.subplots(figsize=(6.0, height), layout="constrained")
    y = np.arange(len(frame))
    presets, tuned = frame["test_presets_mean"], frame["test_tuned_mean"]
    axes.hlines(y, presets, tuned, color="0.6", linewidth=1)
    axes.scatter(presets, y, marker="o", facecolors="white", edgecolors="0.3", label="presets")
    axes.scatter(tuned, y, marker="o", color="C0", label="tuned")
    axes.set_yticks(y, frame["label"])
    axes.set_xlabel("test ACC (%)")
    axes.legend(loc="lower right", frameon=False)
    caption = f"{table.benchmark}: test ACC at the presets and tuned (same budget for every row)"
    return Drawn((table.benchmark, "tuning"), caption, figure)


def tuned_runs(folder: Path) -> pd.DataFrame:
    """The tuned suite's test runs (`folder/runs`); none yet: an empty frame."""
    runs_dir = folder / "runs"
    if not runs_dir.is_dir():
        return pd.DataFrame(columns=["benchmark", "strategy", "config", "acc"])
    return collect(runs_dir).runs
