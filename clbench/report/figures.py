"""Paper-style figures from the runs of one benchmark; every figure is written as PNG and PDF.

Means are over seeds; error bars are one standard deviation over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from clbench.report.style import ordered, strategy_colors, strategy_markers
from clbench.report.tables import row_label

Figure = tuple[str, list[Path]]  # (caption, files)


def _save(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def _rows(runs: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(strategy, label, runs) per row of the table, in the zoo's order."""
    rows = []
    for strategy in ordered(runs["strategy"]):
        mine = runs[runs["strategy"] == strategy]
        for variant in sorted(mine["variant"].unique()):
            rows.append((strategy, row_label(strategy, variant), mine[mine["variant"] == variant]))
    return rows


def _mean_matrix(group: pd.DataFrame) -> np.ndarray:
    return np.mean(np.stack(list(group["matrix"])), axis=0)


def _grid(n: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure with `n` panels, at most six per row; the first `n` axes are returned."""
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def heatmaps(runs: pd.DataFrame, benchmark: str, folder: Path) -> Figure:
    """R[t][j] per strategy: row t = after training task t, column j = task evaluated."""
    rows = _rows(runs)
    n_tasks = len(rows[0][2]["matrix"].iloc[0])
    fig, axes = _grid(len(rows), 2.9, 2.7)
    for ax, (_, label, group) in zip(axes, rows, strict=False):
        matrix = _mean_matrix(group)
        mask = np.triu(np.ones_like(matrix, dtype=bool), k=1)  # tasks not trained yet
        sns.heatmap(
            matrix,
            mask=mask,
            vmin=0,
            vmax=100,
            cmap="viridis",
            cbar=False,
            square=True,
            annot=n_tasks <= 5,
            fmt=".0f",
            annot_kws={"fontsize": 7},
            xticklabels=range(1, n_tasks + 1),
            yticklabels=range(1, n_tasks + 1),
            ax=ax,
        )
        ax.set_title(label, fontsize=10)
        ax.grid(False)
        ax.tick_params(labelsize=7)
    fig.supxlabel("task evaluated")
    fig.supylabel("after training task")
    fig.colorbar(
        plt.cm.ScalarMappable(norm=plt.Normalize(0, 100), cmap="viridis"),
        ax=axes,
        shrink=0.6,
        label="accuracy (%)",
    )
    fig.suptitle(f"{benchmark}: accuracy matrix R (mean over seeds)", fontsize=12)
    caption = "Accuracy matrices: row t = after training task t, column j = task evaluated."
    return caption, _save(fig, folder, f"{benchmark}-heatmaps")


def task_curves(runs: pd.DataFrame, benchmark: str, folder: Path) -> Figure:
    """Accuracy of each task from the moment it is learned to the end of the sequence."""
    rows = _rows(runs)
    n_tasks = len(rows[0][2]["matrix"].iloc[0])
    colors = sns.color_palette("viridis", n_tasks)
    fig, axes = _grid(len(rows), 2.9, 2.3)
    for ax, (_, label, group) in zip(axes, rows, strict=False):
        matrix = _mean_matrix(group)
        for j in range(n_tasks):
            after = np.arange(j, n_tasks)
            ax.plot(after + 1, matrix[j:, j], marker="o", ms=2.5, lw=1.2, color=colors[j])
        ax.set_title(label, fontsize=10)
        ax.set_ylim(0, 102)
        ax.set_xticks(range(1, n_tasks + 1))
        ax.tick_params(labelsize=7)
    fig.supxlabel("after training task")
    fig.supylabel("accuracy (%)")
    handles = [plt.Line2D([], [], color=colors[j], marker="o", ms=3) for j in range(n_tasks)]
    fig.legend(
        handles,
        [f"task {j + 1}" for j in range(n_tasks)],
        loc="lower center",
        ncol=min(n_tasks, 10),
        bbox_to_anchor=(0.5, -0.02),
        frameon=False,
        fontsize=8,
    )
    fig.suptitle(f"{benchmark}: accuracy of each task over the sequence", fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    caption = "Accuracy of each task (one line per task) after each later task."
    return caption, _save(fig, folder, f"{benchmark}-task-curves")


def final_per_task(runs: pd.DataFrame, benchmark: str, folder: Path) -> Figure:
    """R[T-1][j]: what each strategy still knows of every task at the end."""
    rows = _rows(runs)
    final = pd.DataFrame(
        [_mean_matrix(group)[-1] for _, _, group in rows],
        index=[label for _, label, _ in rows],
    )
    final.columns = [f"{j + 1}" for j in final.columns]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * final.shape[1], 0.9 + 0.32 * len(final)))
    sns.heatmap(
        final,
        vmin=0,
        vmax=100,
        cmap="viridis",
        annot=True,
        fmt=".0f",
        annot_kws={"fontsize": 8},
        cbar_kws={"label": "accuracy (%)"},
        ax=ax,
    )
    ax.grid(False)
    ax.set_xlabel("task")
    ax.set_ylabel("")
    ax.set_title(f"{benchmark}: final accuracy on each task (mean over seeds)")
    caption = "Final accuracy on each task after the whole sequence."
    return caption, _save(fig, folder, f"{benchmark}-final-per-task")


def _scatter(ax: plt.Axes, rows: list, colors: dict, markers: dict) -> None:
    for strategy, label, group in rows:
        x, y = group["bwt"], group["acc"]
        spread = len(group) > 1
        ax.errorbar(
            x.mean(),
            y.mean(),
            xerr=x.std() if spread else None,
            yerr=y.std() if spread else None,
            fmt=markers[strategy],
            ms=7,
            capsize=3,
            color=colors[strategy],
            label=label,
        )


def acc_bwt(runs: pd.DataFrame, benchmark: str, folder: Path) -> Figure:
    """ACC against BWT, one marker per strategy, error bars over seeds. When some strategies lie
    far below the rest, a second panel zooms on those within 10 points of the best ACC."""
    rows = _rows(runs)
    colors = strategy_colors(runs["strategy"])
    markers = strategy_markers(runs["strategy"])
    means = np.array([group["acc"].mean() for _, _, group in rows])
    close = [row for row, mean in zip(rows, means, strict=True) if mean >= means.max() - 10]
    panels = [(rows, "all strategies")]
    if len(close) < len(rows):
        panels.append((close, "within 10 points of the best ACC"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2, 4.6), squeeze=False)
    for ax, (shown, title) in zip(axes[0], panels, strict=True):
        _scatter(ax, shown, colors, markers)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("BWT (points; 0 = no forgetting)")
        ax.set_ylabel("ACC (%)")
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(f"{benchmark}: final accuracy against backward transfer", fontsize=12)
    fig.tight_layout()
    caption = "ACC against BWT (error bars: one std over seeds); up and right is better."
    return caption, _save(fig, folder, f"{benchmark}-acc-bwt")


def cost_bars(runs: pd.DataFrame, benchmark: str, folder: Path) -> Figure:
    """Wall time, trainable parameters of the last task and memory kept, per strategy."""
    rows = _rows(runs)
    colors = strategy_colors(runs["strategy"])
    panels = [
        ("seconds", "train + eval time (s)", 1.0),
        ("trainable_params", "trainable parameters (last task)", 1.0),
        ("kept_bytes", "memory kept between tasks (kB)", 1e-3),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.8 + 0.32 * len(rows)), sharey=True)
    labels = [label for _, label, _ in rows]
    for ax, (key, title, scale) in zip(axes, panels, strict=True):
        means = [group[key].mean() * scale for _, _, group in rows]
        stds = [group[key].std() * scale if len(group) > 1 else 0 for _, _, group in rows]
        ax.barh(labels, means, xerr=stds, color=[colors[s] for s, _, _ in rows], capsize=2)
        ax.set_title(title, fontsize=10)
    axes[0].invert_yaxis()  # the y axis is shared: first row at the top
    fig.suptitle(f"{benchmark}: cost per strategy (mean over seeds)", fontsize=12)
    caption = "Cost: wall time, trainable parameters in the last task, memory kept between tasks."
    return caption, _save(fig, folder, f"{benchmark}-cost")


def sensitivity(runs: pd.DataFrame, benchmark: str, folder: Path) -> list[Figure]:
    """ACC and BWT against a swept parameter, for every strategy whose runs sweep exactly one
    numeric parameter."""
    figures = []
    colors = strategy_colors(runs["strategy"])
    for strategy in ordered(runs["strategy"]):
        mine = runs[runs["strategy"] == strategy]
        swept = {key for varied in mine["varied"] for key in varied}
        if len(swept) != 1:
            continue
        (parameter,) = swept
        values = mine["varied"].map(lambda v, p=parameter: v[p])
        if not all(isinstance(v, int | float) for v in values):
            continue
        points = mine.assign(value=values.astype(float)).groupby("value")[["acc", "bwt"]]
        mean, std = points.mean(), points.std().fillna(0)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, metric, title in zip(
            axes, ("acc", "bwt"), ("ACC (%)", "BWT (points)"), strict=True
        ):
            ax.errorbar(
                mean.index,
                mean[metric],
                yerr=std[metric],
                marker="o",
                capsize=3,
                color=colors[strategy],
            )
            if mean.index.min() > 0 and mean.index.max() / mean.index.min() >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(parameter.split(".", 1)[-1])
            ax.set_ylabel(title)
        fig.suptitle(f"{benchmark}: {strategy} sensitivity to {parameter.split('.', 1)[-1]}")
        fig.tight_layout()
        short = parameter.split(".", 1)[-1]
        figures.append(
            (
                f"Sensitivity of {strategy} to {short} (error bars: one std over seeds).",
                _save(fig, folder, f"{benchmark}-{strategy}-{short}-sensitivity"),
            )
        )
    return figures


PER_BENCHMARK: list[Callable[[pd.DataFrame, str, Path], Figure]] = [
    heatmaps,
    task_curves,
    final_per_task,
    acc_bwt,
    cost_bars,
]
