"""One run: a run spec in, one result file out.

The runner resolves the spec (`clbench.resolution`: every setting and its source, the protocol
card), builds the benchmark, model and strategy, trains task by task on an Avalanche
`SupervisedTemplate`, evaluates every task after every task to fill the accuracy matrix R[t][j]
(with `protocol.eval_every`, also every K iterations: `clbench.continual`), and writes the result
with its protocol card.
"""

from __future__ import annotations

import platform
import random
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from clbench.continual import ContinualEvaluation, evaluation_subsets
from clbench.data import BENCHMARKS, DataOptions, TaskSequence
from clbench.data.benchmark import to_scenario
from clbench.divergence import DivergenceWatch, check_distance
from clbench.errors import ConfigError, TrainingDiverged
from clbench.evaluation import AccuracyRecorder, initial_accuracies
from clbench.log_kinds import check_log_kinds
from clbench.machine import cpu_kernels, cpu_model, device_name
from clbench.memory import dataset_bytes, kept_bytes
from clbench.metrics import Curve, gap_records, summarize
from clbench.models import build_model
from clbench.progress import EpochBar
from clbench.protocol import ProtocolParams
from clbench.provenance import code_provenance
from clbench.resolution import ResolvedRun, RunSpec, resolve
from clbench.schedule import ValidationSchedule
from clbench.store import (
    RESULT_FORMAT,
    ensure_writable,
    write_failure,
    write_json_atomic,
    write_replacing,
)
from clbench.strategies import STRATEGIES, StrategyBuild
from clbench.strategies.contract import StrategyPlugin
from clbench.template import HarnessTemplate
from clbench.training_log import TrainingLog, training_logs

if TYPE_CHECKING:
    from avalanche.logging import BaseLogger


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _template(
    model: torch.nn.Module, protocol: ProtocolParams, device: str, plugins: list
) -> HarnessTemplate:
    return HarnessTemplate(
        protocol=protocol,
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=protocol.lr),  # replaced every task
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=protocol.batch_size,
        train_epochs=protocol.epochs,
        eval_mb_size=protocol.eval_batch_size,
        device=torch.device(device),
        plugins=plugins,
        evaluator=None,
    )


def layer_weights(model: torch.nn.Module) -> dict[str, Tensor]:
    """Each layer's effective weight (and bias), flattened and joined, keyed by module name.

    Effective: a parametrized weight (NESS's W + A B^T, TRGP's scaled W) counts as it computes."""
    found = {}
    for name, module in model.named_modules():
        candidates = [getattr(module, attr, None) for attr in ("weight", "bias")]
        tensors = [t for t in candidates if isinstance(t, Tensor)]
        if tensors and name:
            found[name] = torch.cat([t.detach().flatten() for t in tensors]).clone()
    return found


def parameter_distance(before: dict[str, Tensor], after: dict[str, Tensor]) -> dict[str, Any]:
    """||theta_t - theta_{t-1}|| per layer and in total (Euclidean over every layer)."""
    layers = {name: float((after[name] - before[name]).norm()) for name in after}
    return {"total": float(np.sqrt(sum(v * v for v in layers.values()))), "layers": layers}


def environment(device: str, jobs: int = 1) -> dict[str, Any]:
    """The software and hardware of a run; `jobs`: the runs its sweep ran at a time (times of
    runs made under different job counts are not comparable)."""
    versions = {name: metadata.version(name) for name in ("torch", "torchvision", "avalanche-lib")}
    versions["python"] = platform.python_version()
    versions["numpy"] = np.__version__
    return {
        "versions": versions,
        "device": device,
        "device_name": device_name(torch.device(device)),
        "cpu": cpu_model(),
        "cpu_kernels": cpu_kernels(),
        "threads": torch.get_num_threads(),
        "jobs": jobs,
    }


@dataclass
class Prepared:
    """Everything a run trains with, built from a resolved spec, before any training."""

    resolved: ResolvedRun
    sequence: TaskSequence
    built: StrategyBuild
    scenario: Any
    schedule: ValidationSchedule
    recorder: AccuracyRecorder
    template: HarnessTemplate
    training_log: TrainingLog | None = None
    continual: ContinualEvaluation | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.sequence.tasks)

    def train_task(self, t: int) -> None:
        """Train the task at index `t` (task t + 1) under the protocol (validation split,
        schedule, best weights)."""
        self.schedule.start_task(t, [self.scenario.valid_stream[t].dataset])
        with warnings.catch_warnings():  # Avalanche 0.6 warns about its own internals
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.template.train(self.scenario.train_stream[t], eval_streams=[])


def prepare(
    resolved: ResolvedRun, show_epochs: bool = False, loggers: Sequence[Any] = ()
) -> Prepared:
    """Seed, then build the benchmark, model, strategy and training template of a resolved spec;
    with `loggers` (Avalanche loggers), a `TrainingLog` plugin sends them the run's training
    log."""
    spec = resolved.spec
    protocol = resolved.protocol
    seed_everything(spec.seed)
    options = DataOptions(
        root=Path(spec.data_root),
        download=spec.download,
        seed=spec.seed,
        order=protocol.data_order,
    )
    sequence = BENCHMARKS.get(spec.benchmark).build(options)
    n_tasks = len(sequence.tasks)
    model: torch.nn.Module = build_model(
        resolved.model,
        sequence.input_shape,
        n_tasks if sequence.multi_head else 1,
        sequence.classes_per_task,
        resolved.model_params,
    )
    built = STRATEGIES.get(spec.strategy).build(model, resolved.strategy_params)
    model = built.model or model
    scenario = to_scenario(
        sequence,
        protocol.pc_valid,
        spec.seed,
        cumulative=built.cumulative,
        validation_split=protocol.validation_split,
    )
    schedule = ValidationSchedule(protocol)
    recorder = AccuracyRecorder()
    extras: list = [EpochBar(protocol.epochs, n_tasks)] if show_epochs else []
    training_log = TrainingLog(loggers, schedule) if loggers else None
    if training_log is not None:  # after the schedule, which computes the validation loss
        extras.append(training_log)
    continual = None
    if protocol.eval_every:  # last: it evaluates the model every other plugin has left
        stream = evaluated_stream(scenario, built, protocol, spec.strategy)
        subsets = evaluation_subsets(stream, protocol.eval_samples, spec.seed)
        continual = ContinualEvaluation(subsets, protocol.eval_every, recorder)
        extras.append(continual)
    with warnings.catch_warnings():  # "no loggers": the harness records its own metrics
        warnings.simplefilter("ignore", UserWarning)
        template = _template(
            model,
            protocol,
            spec.device,
            [*built.plugins, DivergenceWatch(), schedule, recorder, *extras],
        )
    return Prepared(
        resolved, sequence, built, scenario, schedule, recorder, template, training_log, continual
    )


def save_checkpoint(path: Path, model: torch.nn.Module, task: int) -> None:
    """The model's tensors after task `task` (numbered from 1): state_dict, effective weights of
    parametrized layers included, written atomically; it holds tensors, ints and strings only, so
    `torch.load(path, weights_only=True)` reads it without unpickling code."""
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    weights = {f"{name}.effective": tensor for name, tensor in layer_weights(model).items()}
    checkpoint = {"task": task, "state_dict": state, "effective_weights": weights}
    write_replacing(path, lambda tmp: torch.save(checkpoint, tmp))


def evaluated_stream(
    scenario: Any, built: StrategyBuild, protocol: ProtocolParams, strategy: str
) -> Any:
    """The stream the accuracy matrix is measured on (`protocol.evaluate_on`)."""
    if protocol.evaluate_on == "test":
        return scenario.test_stream
    if built.cumulative:
        raise ConfigError(
            f"protocol.evaluate_on=validation: {strategy} trains on the union of the tasks so "
            "far, whose validation experiences mix tasks; use protocol.evaluate_on=test"
        )
    return scenario.valid_stream


def evaluate(
    template: HarnessTemplate, recorder: AccuracyRecorder, stream: Any, n_tasks: int, passes: int
) -> list[float]:
    """Accuracy (percent) on every task of `stream`, the mean over `passes` passes over its
    shuffled batches (`protocol.eval_passes`; with batch-statistics BatchNorm, passes differ)."""
    totals = [0.0] * n_tasks
    for _ in range(passes):
        template.eval(stream, shuffle=True)
        totals = [t + a for t, a in zip(totals, recorder.accuracies(n_tasks), strict=True)]
    return [round(100 * total / passes, 10) for total in totals]


def kept_after(prepared: Prepared, t: int) -> int:
    """Bytes the strategy keeps after the task at index `t`: its plugins' (`kept_bytes`) and, for
    a cumulative strategy, the samples of every task so far that it trains on again (the training
    and validation sets of the cumulative experience)."""
    kept = kept_bytes(prepared.built.plugins)
    if prepared.built.cumulative:
        scenario = prepared.scenario
        kept += dataset_bytes(scenario.train_stream[t].dataset)
        kept += dataset_bytes(scenario.valid_stream[t].dataset)
    return kept


def task_reports(plugins: Sequence[object]) -> dict[str, Any]:
    """The strategy plugins' reports of the task just trained (`TaskReport`), as fields of its
    record: `subspaces` ({quantity: {layer: size}}, every plugin's together) and the details."""
    subspaces: dict[str, dict[str, int]] = {}
    details: dict[str, Any] = {}
    for plugin in plugins:
        if isinstance(plugin, StrategyPlugin):
            report = plugin.task_report()
            subspaces.update(report.subspaces)
            details.update(report.details)
    return {"subspaces": subspaces, **details}


def train_sequence(
    prepared: Prepared, say: Callable[[str], None], checkpoint_dir: Path | None
) -> tuple[list[list[float]], list[dict[str, Any]], list[float] | None]:
    """Train and evaluate every task in turn; the accuracy matrix (percent), a record per task
    (tasks numbered from 1) and, for a benchmark with one shared head, the accuracy of the model
    before any training on each task (`initial_accuracies`, counted in the first task's
    `eval_seconds`; None otherwise). With `checkpoint_dir`, the model is saved there after every
    task."""
    protocol = prepared.resolved.protocol
    stream = evaluated_stream(
        prepared.scenario, prepared.built, protocol, prepared.resolved.spec.strategy
    )
    split = "test" if stream is prepared.scenario.test_stream else "valid"
    passes = protocol.eval_passes
    schedule, recorder, template = prepared.schedule, prepared.recorder, prepared.template
    built, n_tasks = prepared.built, prepared.n_tasks
    matrix: list[list[float]] = []
    tasks: list[dict[str, Any]] = []
    weights = layer_weights(template.model)
    initial, initial_seconds = None, 0.0
    if not prepared.sequence.multi_head:
        started = time.perf_counter()
        datasets = [experience.dataset for experience in stream]
        batch_size = protocol.eval_batch_size
        initial = initial_accuracies(template.model, datasets, batch_size)
        initial_seconds = time.perf_counter() - started
    for t in range(n_tasks):
        started = time.perf_counter()
        prepared.train_task(t)
        if prepared.continual is not None:
            prepared.continual.task_ended(template, t + 1)
        trained = time.perf_counter()
        previous, weights = weights, layer_weights(template.model)
        distance = parameter_distance(previous, weights)
        check_distance(distance, t, schedule.epochs_run, schedule.lr)
        matrix.append(evaluate(template, recorder, stream, n_tasks, passes))
        if prepared.training_log is not None:
            prepared.training_log.log_evaluation(matrix[-1], t + 1, split)
        record = {
            "task": t + 1,
            "name": prepared.sequence.tasks[t].name,
            "epochs": schedule.epochs_run,
            "best_valid_loss": schedule.best_loss,
            "train_seconds": trained - started,
            "eval_seconds": time.perf_counter() - trained + (initial_seconds if t == 0 else 0.0),
            "trainable_params": template.trainable_params,
            "kept_bytes": kept_after(prepared, t),
            "parameter_distance": distance,
        }
        record.update(task_reports(built.plugins))
        tasks.append(record)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir / f"task{t + 1}.pt", template.model, t + 1)
        say(
            f"task {t + 1}/{n_tasks}: {schedule.epochs_run} epochs, "
            f"acc on it {matrix[-1][t]:.2f} %, mean so far {np.mean(matrix[-1][: t + 1]):.2f} % "
            f"({trained - started:.1f}s)"
        )
    return matrix, tasks, initial


def run(
    spec: RunSpec,
    results_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    show_epochs: bool = False,
    checkpoints: bool = False,
    log: Sequence[str] = (),
    jobs: int = 1,
) -> dict[str, Any]:
    """Train `spec` task by task, return its result and, with `results_dir`, write it there.
    `progress` receives a line per task; `show_epochs` draws a progress bar over each task's
    epochs (for runs in the foreground of a terminal); `checkpoints` (with `results_dir`) saves
    the model after every task (`save_checkpoint`); `log` names the training logs to write (with
    `results_dir`, under `<name>.logs/<kind>/`, `clbench.training_log`), which do not change the
    result; `jobs`, the runs its sweep runs at a time, is recorded in its `environment`. A run
    that diverges (`clbench.divergence`) raises `TrainingDiverged` and, with `results_dir`,
    leaves `<name>.failed.json` saying so there instead of a result."""
    resolved = resolve(spec)  # bad names and values are reported before the folder is touched
    kinds = check_log_kinds(log)
    if kinds and results_dir is None:
        raise ConfigError(
            f"--log {','.join(kinds)}: training logs are written beside the result file; "
            "give a results folder"
        )
    if results_dir is not None:
        ensure_writable(results_dir)
    provenance = code_provenance(STRATEGIES.get(spec.strategy).module)
    say = progress or (lambda message: None)
    logs: AbstractContextManager[list[BaseLogger]] = (
        training_logs(
            kinds, Path(results_dir) / f"{resolved.name}.logs", resolved.name, resolved.config
        )
        if kinds and results_dir is not None
        else nullcontext([])
    )
    with logs as loggers:  # closed however the run ends: what was logged stays on disk
        prepared = prepare(resolved, show_epochs, loggers)
        checkpoint_dir = (
            Path(results_dir) / f"{resolved.name}.ckpt" if checkpoints and results_dir else None
        )
        try:
            matrix, tasks, initial = train_sequence(prepared, say, checkpoint_dir)
        except TrainingDiverged as err:
            if results_dir is not None:
                write_failure(Path(results_dir), resolved.name, f"{type(err).__name__}: {err}")
            raise
    model = prepared.template.model
    continual, curve = None, None
    if prepared.continual is not None:
        continual = prepared.continual.record(resolved.protocol.evaluate_on)
        curve = Curve.of(continual)
        continual["stability_gap"] = gap_records(curve)
    result = {
        "format": RESULT_FORMAT,
        "name": resolved.name,
        "spec": {**resolved.config, "data_root": spec.data_root},
        "strategy_info": STRATEGIES.get(spec.strategy).info.as_dict(),
        "card": resolved.card_dicts(),
        "accuracy_matrix": matrix,
        "metrics": summarize(matrix, initial, curve),
        "tasks": tasks,
        "total_params": sum(p.numel() for p in model.parameters()),
        "environment": environment(spec.device, jobs),
        "provenance": provenance,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if initial is not None:
        result["initial_accuracy"] = initial
    if continual is not None:
        result["continual"] = continual
    if results_dir is not None:
        write_json_atomic(Path(results_dir) / f"{resolved.name}.json", result)
    return result
