"""Training logs (`--log csv|tensorboard|wandb`), written through Avalanche's loggers.

Per training epoch: `train/loss` (the mean over the epoch's mini-batches of the loss minimised,
`strategy.loss`, weighted by batch size), `valid/loss` (the validation schedule's), `lr` (the
learning rate of the epoch), and `task` and `epoch` (both counted from 1, the epoch within its
task). After each task's evaluation: `{split}/acc_task{j}` (the accuracy in percent on task j,
from 1; split is `test` or `valid`, as `protocol.evaluate_on`) and `{split}/acc_mean_seen` (the
mean over the tasks trained so far). Every value is logged at x = the epochs trained so far in the
run, across tasks: one step that never goes back, for every logger (wandb drops steps that do).
"""

from __future__ import annotations

import csv
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import MetricValue
from avalanche.logging import BaseLogger, TensorboardLogger, WandBLogger

from clbench.errors import ConfigError
from clbench.schedule import ValidationSchedule

CSV_NAME = "metrics.csv"


class MetricsCSV(BaseLogger):
    """A long-format CSV, `x,name,value`, one row per value, flushed as it is written."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["x", "name", "value"])

    def log_single_metric(self, name, value, x_plot) -> None:
        self.writer.writerow([x_plot, name, value])
        self.file.flush()


class ScalarWandBLogger(WandBLogger):
    """Avalanche's W&B logger for scalar values: Avalanche 0.6's own `log_single_metric` reads
    `wandb.viz`, which current wandb no longer has."""

    def log_single_metric(self, name, value, x_plot) -> None:
        self.step = x_plot
        self.wandb.log({name: value}, step=x_plot)


def _open_wandb(folder: Path, run_name: str, config: dict[str, Any]) -> BaseLogger:
    import wandb

    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        return ScalarWandBLogger(
            project_name="clbench",
            run_name=run_name,
            dir=folder.parent,  # wandb writes into its `wandb` folder there
            config=config,
            save_code=False,
            # an id of our own: Avalanche 0.6 asks wandb.util for one, which wandb 0.28.2 dropped
            params={"id": secrets.token_hex(4)},
        )
    except wandb.errors.Error as err:
        raise ConfigError(
            f"--log wandb: {str(err).splitlines()[0]} (WANDB_MODE=offline logs without an account)"
        ) from None


def _open_tensorboard(folder: Path, run_name: str, config: dict[str, Any]) -> BaseLogger:
    shutil.rmtree(folder, ignore_errors=True)  # a run made again replaces its log
    return TensorboardLogger(tb_log_dir=folder)


def _open_csv(folder: Path, run_name: str, config: dict[str, Any]) -> BaseLogger:
    return MetricsCSV(folder / CSV_NAME)


OPENERS: dict[str, Callable[[Path, str, dict[str, Any]], BaseLogger]] = {
    "csv": _open_csv,
    "tensorboard": _open_tensorboard,
    "wandb": _open_wandb,
}


def _close(logger: BaseLogger, failed: bool) -> None:
    if isinstance(logger, WandBLogger):
        logger.wandb.finish(exit_code=1 if failed else 0)
    elif isinstance(logger, TensorboardLogger):
        logger.writer.close()
    elif isinstance(logger, MetricsCSV):
        logger.file.close()


@contextmanager
def training_logs(
    kinds: Sequence[str], folder: Path, run_name: str, config: dict[str, Any]
) -> Iterator[list[BaseLogger]]:
    """The loggers of `kinds`, each writing under `folder / kind`; all are closed on leaving,
    however the run ends (wandb records a failed run as failed)."""
    loggers: list[BaseLogger] = []
    failed = False
    try:
        for kind in kinds:
            loggers.append(OPENERS[kind](folder / kind, run_name, config))
        yield loggers
    except BaseException:
        failed = True
        raise
    finally:
        for logger in loggers:
            _close(logger, failed)


class TrainingLog(SupervisedPlugin):
    """Sends the values of the module docstring to `loggers`; placed after `schedule` in the plugin
    list, so that the optimizer of an epoch and its validation loss exist when it reads them."""

    def __init__(self, loggers: Sequence[BaseLogger], schedule: ValidationSchedule) -> None:
        super().__init__()
        self.loggers = list(loggers)
        self.schedule = schedule
        self.x = 0
        self.lr = 0.0
        self.loss_sum = torch.zeros(1)
        self.samples = 0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self.lr = strategy.optimizer.param_groups[0]["lr"]
        # shape 1: takes a loss of shape () or (1,) in place
        self.loss_sum, self.samples = torch.zeros(1, device=strategy.device), 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        n = len(strategy.mb_y)
        self.loss_sum.add_(strategy.loss.detach(), alpha=n)  # not read here: no device sync
        self.samples += n

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self.x += 1
        self.send(
            {
                "task": self.schedule.task + 1,
                "epoch": self.schedule.epochs_run,
                "train/loss": float(self.loss_sum) / max(self.samples, 1),
                "valid/loss": self.schedule.last_loss,
                "lr": self.lr,
            }
        )

    def log_evaluation(self, accuracies: Sequence[float], seen: int, split: str) -> None:
        """After a task's evaluation: `accuracies` per task (percent), the first `seen` trained."""
        values = {f"{split}/acc_task{j}": a for j, a in enumerate(accuracies, start=1)}
        values[f"{split}/acc_mean_seen"] = sum(accuracies[:seen]) / seen
        self.send(values)

    def send(self, values: dict[str, float]) -> None:
        metrics = [MetricValue(self, name, value, self.x) for name, value in values.items()]
        for logger in self.loggers:
            logger.log_metrics(metrics)
