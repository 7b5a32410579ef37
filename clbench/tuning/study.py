"""`clbench tune`: one Optuna study per (benchmark, strategy), scored on the validation split.

Every strategy gets the same budget (`trials`, counted as finished trials), the same sampler
(`SAMPLER`: TPE with a fixed seed) and no pruning: each trial trains the whole task sequence,
since a score after some of the tasks ranks no method's forgetting. A trial's runs read no test
data: the protocol measures its accuracy matrix on the validation split
(`protocol.evaluate_on = validation`) and its schedule already watches the validation loss.

The trials' runs are ordinary result files in `<results>/trials` and the studies live in an
Optuna storage (default `<results>/studies.db`, SQLite), so a study that is killed resumes: its
finished trials stay, and a trial it had started (`RUNNING` in the storage, asked by a process
that no longer lives on this machine) is run again, reusing whichever of its runs finished.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.errors import ConfigError
from clbench.executors.base import Executor, Outcome
from clbench.executors.local import LocalExecutor
from clbench.resolution import OWN_PROTOCOL_PREFIX, ResolvedRun, RunSpec, resolve
from clbench.store import ensure_writable, load_result, remove_temporaries
from clbench.sweep import plan, suite_overrides, sweep_lock
from clbench.tuning.objective import Objective
from clbench.tuning.space import LR, Choice, Fixed, SearchSpace, field_value, sampled_value
from clbench.tuning.space import search_space as declared_space

if TYPE_CHECKING:
    import optuna

SAMPLER = "TPE (optuna.samplers.TPESampler, seed 0, its default startup of 10 random trials)"
DEFAULT_SEEDS = (100,)


@dataclass(frozen=True)
class TuneOptions:
    """What to tune. `suite`: a suite whose presets and overrides for the benchmark every trial
    starts from (its protocol); `typed`: what `--set` typed, fixed in every trial; `seeds`: the
    seeds a trial trains (its score is their mean)."""

    benchmark: str
    strategies: tuple[str, ...]
    trials: int
    results: Path
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    suite: dict[str, Any] = field(default_factory=dict)
    suite_name: str = ""
    typed: dict[str, dict[str, Any]] = field(default_factory=dict)
    storage: str | None = None
    objective: Objective = Objective()
    data_root: str = "data"
    device: str = "cpu"


def storage_url(options: TuneOptions) -> str:
    return options.storage or f"sqlite:///{(options.results / 'studies.db').resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at `url`; one line where it cannot be opened."""
    import optuna

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # SQLAlchemy and Optuna raise many kinds for a bad URL
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(
            f"--storage {url!r} cannot be opened ({reason}); give an Optuna RDB URL, "
            "e.g. sqlite:///studies.db or postgresql://user@host/db"
        ) from None


def study_name(benchmark: str, strategy: str) -> str:
    return f"{benchmark}/{strategy}"


@dataclass
class StudyPlan:
    """One strategy's study: its base run (the presets every trial starts from), its space and
    the resolved values its first trial keeps."""

    strategy: str
    base: RunSpec
    space: SearchSpace
    params_type: type
    lr: float
    lr_min: float
    defaults: dict[str, Any]

    @classmethod
    def of(cls, options: TuneOptions, strategy: str) -> StudyPlan:
        overrides = suite_overrides(options.suite, options.benchmark, strategy)
        typed = {
            o: dict(v) for o, v in options.typed.items() if o in ("protocol", "model", strategy)
        }
        typed["protocol"] = {**typed.get("protocol", {}), "evaluate_on": "validation"}
        base = RunSpec(
            options.benchmark,
            strategy,
            seed=options.seeds[0],
            device=options.device,
            data_root=options.data_root,
            overrides=overrides,
            typed=typed,
            origin=f"tuning of {options.suite_name or 'the presets'}",
        )
        resolved = resolve(base)
        base = replace(base, typed=_as_resolved(typed, resolved, strategy))  # typed text as values
        params_type = type(resolved.strategy_params)
        space = declared_space(strategy, params_type)
        fixed = set(typed.get(strategy, {}))  # what the user typed is not searched
        space = replace(space, fields={k: v for k, v in space.fields.items() if k not in fixed})
        if f"{OWN_PROTOCOL_PREFIX}lr" in fixed or "lr" in options.typed.get("protocol", {}):
            space = replace(space, lr=Fixed("typed by the user"))
        defaults: dict[str, Any] = {}
        for name, dimension in space.dimensions().items():
            value = (
                1.0
                if name == LR
                else sampled_value(getattr(resolved.strategy_params, name.split(".", 1)[1]))
            )
            if dimension.contains(value):
                defaults[name] = value
        protocol = resolved.protocol
        return cls(strategy, base, space, params_type, protocol.lr, protocol.lr_min, defaults)

    def specs(self, values: dict[str, Any], seeds: tuple[int, ...]) -> list[RunSpec]:
        """The runs of a trial with `values` ({searched name: sampled value}), one per seed."""
        own = dict(self.base.typed.get(self.strategy, {}))
        for name, value in values.items():
            if name == LR:
                own[f"{OWN_PROTOCOL_PREFIX}lr"] = self.lr * value
                own[f"{OWN_PROTOCOL_PREFIX}lr_min"] = self.lr_min * value
            else:
                field_name = name.split(".", 1)[1]
                own[field_name] = field_value(self.params_type, field_name, value)
        typed = {**self.base.typed, self.strategy: own}
        return [replace(self.base, seed=seed, typed=typed) for seed in seeds]

    def settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """What a trial sets for the strategy (its fields, `protocol.lr` and `protocol.lr_min`,
        and what the user typed for it), JSON-ready."""
        (spec,) = self.specs(values, (self.base.seed,))
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in spec.typed[self.strategy].items()
        }


def _as_resolved(
    typed: dict[str, dict[str, Any]], resolved: ResolvedRun, strategy: str
) -> dict[str, dict[str, Any]]:
    """What the user typed (command-line text) as the values the run resolved them to."""
    owners = {"protocol": resolved.protocol, "model": resolved.model_params}
    values: dict[str, dict[str, Any]] = {}
    for owner, fields in typed.items():
        values[owner] = {}
        for name in fields:
            own = owner == strategy and name.startswith(OWN_PROTOCOL_PREFIX)
            source = resolved.protocol if own else owners.get(owner, resolved.strategy_params)
            values[owner][name] = getattr(source, name.removeprefix(OWN_PROTOCOL_PREFIX))
    return values


def suggest(trial: optuna.Trial, plan: StudyPlan) -> dict[str, Any]:
    """The trial's values. The study's first trial is the presets' configuration: it takes the
    defaults enqueued for it and leaves the rest at the presets."""
    names = plan.space.dimensions()
    if trial.number == 0:
        names = {k: v for k, v in names.items() if k in plan.defaults}
    values = {}
    for name, dimension in names.items():
        if isinstance(dimension, Choice):
            values[name] = trial.suggest_categorical(name, list(dimension.values))
        elif dimension.integer:
            values[name] = trial.suggest_int(
                name, int(dimension.low), int(dimension.high), log=dimension.log
            )
        else:
            values[name] = trial.suggest_float(
                name, dimension.low, dimension.high, log=dimension.log
            )
    return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphans(study: optuna.Study) -> list[optuna.Trial]:
    """Trials left running by a process of this machine that has ended (a killed study)."""
    import optuna

    host = socket.gethostname()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return [
        optuna.trial.Trial(study, t._trial_id)
        for t in running
        if t.user_attrs.get("host") == host and not _alive(int(t.user_attrs.get("pid", -1)))
    ]


@dataclass
class _Pending:
    """A trial whose runs are under way: the trial, its values, its run names, their scores."""

    trial: optuna.Trial
    values: dict[str, Any]
    names: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def done(self) -> bool:
        return len(self.scores) + len(self.errors) == len(self.names)


class StudyRunner:
    """Runs one study to its budget: asks a trial whenever the executor wants a run, tells it
    when its runs are done, and says one line per finished trial."""

    def __init__(
        self, study: optuna.Study, plan: StudyPlan, options: TuneOptions, say: Callable[[str], None]
    ) -> None:
        self.study, self.plan, self.options, self.say = study, plan, options, say
        self.trials_dir = options.results / "trials"
        self.pending: list[_Pending] = []

    def finished(self) -> int:
        import optuna

        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def _start(self, trial: optuna.Trial, values: dict[str, Any]) -> Iterator[RunSpec]:
        """The runs of `trial` not already done; a trial whose runs are all done (a resumed
        study) is told at once."""
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        specs = self.plan.specs(values, self.options.seeds)
        planned = plan(specs, self.trials_dir)
        pending = _Pending(trial, values, planned.names)
        for name in planned.present:
            pending.scores[name] = self._score(name)
        self.pending.append(pending)
        if pending.done():
            self._tell(pending)
        yield from planned.todo

    def feed(self) -> Iterator[RunSpec]:
        """Runs to do, trial by trial: the orphans first, then new trials up to the budget. A new
        trial is asked only when the executor wants its first run, after every trial finished
        before it has been told."""
        for trial in orphans(self.study):
            self.say(
                f"{self.plan.strategy}: trial {trial.number + 1} was cut short; running it again"
            )
            yield from self._start(trial, dict(self.study.trials[trial.number].params))
        if not self.study.trials:
            self.study.enqueue_trial(self.plan.defaults)
        while self.finished() + len(self.pending) < self.options.trials:
            trial = self.study.ask()
            yield from self._start(trial, suggest(trial, self.plan))

    def _score(self, name: str) -> float:
        result = load_result(self.trials_dir / f"{name}.json")
        if result is None:
            raise ConfigError(f"trial run {name}: its result file is missing or invalid")
        return self.options.objective.score(result["metrics"])

    def receive(self, outcome: Outcome) -> None:
        """Count a finished run toward every trial waiting for it (two trials may draw the same
        values, hence the same run)."""
        for pending in [p for p in self.pending if outcome.name in p.names]:
            if outcome.name in pending.scores or outcome.error in pending.errors:
                continue
            pending.seconds += outcome.seconds
            if outcome.ok:
                pending.scores[outcome.name] = self._score(outcome.name)
            else:
                pending.errors.append(outcome.error)
            if pending.done():
                self._tell(pending)

    def _tell(self, pending: _Pending) -> None:
        import optuna

        self.pending.remove(pending)
        trial = pending.trial
        trial.set_user_attr("runs", pending.names)
        trial.set_user_attr("seconds", round(pending.seconds, 2))
        trial.set_user_attr("settings", self.plan.settings(pending.values))
        count = f"{self.plan.strategy} trial {trial.number + 1}/{self.options.trials}"
        shown = ", ".join(_shown(k, v) for k, v in pending.values.items()) or "presets"
        if pending.errors:
            trial.set_user_attr("error", pending.errors[0])
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if pending.errors[0].startswith(f"{ConfigError.__name__}: "):  # no trial can run
                raise ConfigError(pending.errors[0].removeprefix(f"{ConfigError.__name__}: "))
            self.say(f"{count} failed ({shown}): {pending.errors[0]}")
            return
        score = sum(pending.scores.values()) / len(pending.scores)
        self.study.tell(trial, score)
        self.say(
            f"{count}: {score:.2f} (best {self.study.best_value:.2f}) {shown} "
            f"({pending.seconds:.1f}s)"
        )

    def run(self, executor: Executor) -> None:
        """Run the study to its budget on `executor`: the local one takes runs as its workers
        free up; others (Ray, SLURM) take them in batches of their `jobs`."""
        feed = self.feed()
        if isinstance(executor, LocalExecutor):
            for outcome in executor.run_all(feed, self.trials_dir):
                self.receive(outcome)
            return
        size = getattr(executor, "jobs", 1) * len(self.options.seeds)
        while batch := list(itertools.islice(feed, size)):
            for outcome in executor.run_all(batch, self.trials_dir):
                self.receive(outcome)


def _shown(name: str, value: Any) -> str:
    """A trial's value in its line: the rate as the multiplier it is."""
    number = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"lr x{number}" if name == LR else f"{name}={number}"


def tune(
    options: TuneOptions, executor: Executor | None = None, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run a study per strategy of `options` to its budget, then write the summary of every
    study in the storage (`summary.json`) and the tuned suite (`tuned.toml`) into the results
    folder; returns the summary."""
    import optuna

    from clbench.tuning.output import write_outputs

    say = say or (lambda line: print(line, flush=True))  # a line per trial, in logs as it ends
    if options.trials < 1:
        raise ConfigError(f"--trials {options.trials}: give at least 1 trial per strategy")
    plans = [StudyPlan.of(options, strategy) for strategy in options.strategies]  # checked first
    ensure_writable(options.results)
    storage = open_storage(storage_url(options))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials_dir = options.results / "trials"
    ensure_writable(trials_dir)
    with sweep_lock(trials_dir):
        remove_temporaries(trials_dir)
        for study_plan in plans:
            study = optuna.create_study(
                study_name=study_name(options.benchmark, study_plan.strategy),
                storage=storage,
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=0),
                load_if_exists=True,
            )
            check_study(study, options, study_plan)
            say(f"{study.study_name}: {len(study.trials)} trials so far, budget {options.trials}")
            try:
                StudyRunner(study, study_plan, options, say).run(executor or LocalExecutor())
            except ConfigError as err:  # a setting no trial can run with: the next strategy
                say(f"{study.study_name}: not tuned: {err}")
    return write_outputs(options.results, storage)


def check_study(study: optuna.Study, options: TuneOptions, plan: StudyPlan) -> None:
    """A study continues only under the objective, seeds and space it started with; a new one
    records them, with the base run every trial starts from (for the tuned suite)."""
    stated = {
        "objective": str(options.objective),
        "seeds": list(options.seeds),
        "space": {k: repr(v) for k, v in plan.space.dimensions().items()},
        "sampler": SAMPLER,
    }
    if not study.user_attrs:
        for key, value in stated.items():
            study.set_user_attr(key, value)
        study.set_user_attr("benchmark", options.benchmark)
        study.set_user_attr("strategy", plan.strategy)
        study.set_user_attr("suite", options.suite_name)
        study.set_user_attr("base_overrides", plan.base.overrides)
        study.set_user_attr(
            "base_protocol",
            {k: v for k, v in plan.base.typed.get("protocol", {}).items() if k != "evaluate_on"},
        )
        return
    for key, value in stated.items():
        if study.user_attrs.get(key) != value:
            raise ConfigError(
                f"study {study.study_name} was started with {key} {study.user_attrs.get(key)!r}, "
                f"not {value!r}; use another --results folder or --storage"
            )
