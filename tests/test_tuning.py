"""`clbench tune`: search spaces beside each method, one objective for all, studies scored on the
validation split only, killed studies that resume, and the tuned suite that `clbench sweep` runs."""

import dataclasses
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import pytest
import torch

from clbench.cli import main
from clbench.errors import ConfigError
from clbench.executors.base import execute
from clbench.params import field_types
from clbench.report.build import ReportOptions, write_report
from clbench.resolution import RunSpec, resolve
from clbench.store import read_result
from clbench.strategies import STRATEGIES, StrategyBuild, register_strategy
from clbench.sweep import expand, load_suite, run_sweep
from clbench.template import HarnessTemplate
from clbench.tuning.objective import Objective
from clbench.tuning.space import LR, Choice, Fixed, Range, sampled_value, search_space
from clbench.tuning.study import TuneOptions, tune

QUICK = {"protocol": {"epochs": "2"}}


def quick_options(tmp_path, strategies, trials, **more) -> TuneOptions:
    return TuneOptions("split-digits", tuple(strategies), trials, tmp_path, typed=QUICK, **more)


def test_every_shipped_space_is_valid_and_holds_the_papers_value():
    """Each declared range is non-empty, names a field, and contains the field's default (the
    paper's constant) where the field is one number."""
    checked = 0
    for name, strategy in STRATEGIES.items():
        for params_type in strategy.params_types:
            space = search_space(name, params_type)
            defaults = {f.name: f.default for f in dataclasses.fields(params_type)}
            for field_name, dimension in space.fields.items():
                value = sampled_value(defaults[field_name])
                assert dimension.contains(value), (name, field_name, value)
                checked += 1
            assert not isinstance(space.lr, Fixed)  # every shipped method searches its rate
    assert checked >= 15


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"x": Range(2.0, 1.0)}, r"SEARCH_SPACE\['x'\]: range \[2.0, 1.0\] is empty or inverted"),
        ({"x": Range(0.0, 1.0, log=True)}, "a log-scale range needs low > 0, got 0.0"),
        ({"x": Choice(())}, "a choice needs at least one value"),
        ({"y": Range(0.0, 1.0)}, "no field 'y'; valid: x"),
        ({LR: Range(0.1, 1.0)}, "the rate is searched on the shared grid or Fixed"),
    ],
)
def test_a_bad_space_is_one_line_naming_it(space, message):
    @dataclass
    class Params:
        x: float = 0.5
        SEARCH_SPACE: ClassVar = space

    with pytest.raises(ConfigError, match=message):
        search_space("probe", Params)


def test_the_objective_is_acc_or_acc_within_a_forgetting_bound():
    metrics = {"acc": 80.0, "forgetting": 6.0}
    assert Objective.parse("acc").score(metrics) == 80.0
    assert Objective.parse("acc:forgetting<=10").score(metrics) == 80.0
    assert Objective.parse("acc:forgetting<=5").score(metrics) == -6.0  # outside: below any ACC
    assert str(Objective.parse("acc:forgetting<=5")) == "acc:forgetting<=5"
    for bad in ("bwt", "acc:forgetting<=-1", "acc:forgetting<=x"):
        with pytest.raises(ConfigError, match="use acc or acc:forgetting<=F"):
            Objective.parse(bad)


def test_trials_read_no_test_data_and_the_first_is_the_presets(tmp_path, monkeypatch):
    """Counting every sample the template evaluates: the trials evaluate validation samples
    only. The first trial of each study is the presets' configuration (the rate unscaled, EWC's
    lambda at its default)."""
    evaluated = {"test": 0, "valid": 0}
    plain_eval = HarnessTemplate.eval

    def counting_eval(self, stream, **kwargs):
        for experience in stream:
            evaluated[experience.origin_stream.name] += len(experience.dataset)
        return plain_eval(self, stream, **kwargs)

    monkeypatch.setattr(HarnessTemplate, "eval", counting_eval)
    summary = tune(quick_options(tmp_path, ["naive", "ewc"], 3), say=lambda line: None)
    assert evaluated["test"] == 0 and evaluated["valid"] > 0
    ewc = summary["split-digits/ewc"]
    assert ewc["finished"] == 3 and ewc["failed"] == 0 and ewc["objective"] == "acc"
    assert ewc["best_score"] == max(ewc["best_score"], ewc["preset_score"])
    first = [p for p in (tmp_path / "trials").glob("*.json")]
    assert len(first) == 6  # three trials of one seed per strategy
    import optuna

    study = optuna.load_study(
        study_name="split-digits/ewc", storage=f"sqlite:///{tmp_path}/studies.db"
    )
    assert study.trials[0].params == {LR: 1.0, "ewc.ewc_lambda": 100.0}


def test_the_tuned_suite_runs_the_best_settings_on_the_test_split(tmp_path):
    summary = tune(quick_options(tmp_path, ["ewc"], 2), say=lambda line: None)
    best = summary["split-digits/ewc"]["best_settings"]
    (spec,) = [s for s in expand(load_suite(str(tmp_path / "tuned.toml"))) if s.seed == 0]
    resolved = resolve(spec)
    assert resolved.strategy_params.ewc_lambda == best["ewc_lambda"]
    assert resolved.protocol.lr == best["protocol.lr"]
    assert resolved.protocol.lr_min == best["protocol.lr_min"]
    assert resolved.protocol.epochs == 2  # what --set fixed during tuning
    assert resolved.protocol.evaluate_on == "test"
    assert [s.seed for s in expand(load_suite(str(tmp_path / "tuned.toml")))] == [0, 1, 2]


@dataclass
class PoisonParams:
    """Poisons the model's weights with NaN when `poison` is set."""

    poison: bool = False
    SEARCH_SPACE: ClassVar = {"poison": Choice((True,)), LR: Fixed("the test fixes it")}


def poisoned(model: torch.nn.Module, params: PoisonParams) -> StrategyBuild:
    if params.poison:
        with torch.no_grad():
            for tensor in model.parameters():
                tensor.fill_(float("nan"))
    return StrategyBuild()


def test_a_trial_that_diverges_fails_in_one_line_and_the_study_goes_on(tmp_path, registered):
    register_strategy("poisoned", poisoned)
    lines: list[str] = []
    summary = tune(quick_options(tmp_path, ["poisoned"], 3), say=lines.append)
    study = summary["split-digits/poisoned"]
    assert study["finished"] == 3 and study["failed"] == 2  # the presets' trial is sound
    assert study["best_trial"] == 1 and study["best_settings"] == {}  # presets: nothing set
    failures = [line for line in lines if " failed " in line]
    assert len(failures) == 2
    for line in failures:  # one line each: the trial, its values and the error
        assert line.startswith("poisoned trial ") and "\n" not in line
        assert " failed (poisoned.poison=True): TrainingDiverged: " in line
    assert set(study["failures"]) == {"2", "3"}


def test_a_study_continues_under_its_own_objective_only(tmp_path):
    tune(quick_options(tmp_path, ["naive"], 1), say=lambda line: None)
    other = quick_options(tmp_path, ["naive"], 2, objective=Objective(5.0))
    with pytest.raises(ConfigError, match="was started with objective 'acc'"):
        tune(other, say=lambda line: None)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--strategies", "nope"], "unknown strategy 'nope'"),
        (["--strategies", "naive", "--storage", "nosuchdb://x"], "--storage 'nosuchdb://x' cannot"),
        (["--strategies", "naive", "--objective", "bwt"], "--objective 'bwt' is not valid"),
        (["--strategies", "naive", "--set", "ewc.ewc_lambda=1"], "unknown owner 'ewc'"),
    ],
)
def test_bad_tuning_input_is_one_line(tmp_path, capsys, arguments, message):
    base = ["tune", "--benchmark", "split-digits", "--trials", "2", "--results", str(tmp_path)]
    assert main([*base, *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_killed_study_resumes_without_losing_a_finished_trial(tmp_path):
    command = [
        sys.executable, "-m", "clbench.cli", "tune", "--benchmark", "split-digits",
        "--strategies", "naive", "--trials", "4", "--results", str(tmp_path),
        "--set", "protocol.epochs=2",
    ]  # fmt: skip
    tuning = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert tuning.stdout is not None
    told = []
    for line in tuning.stdout:
        if line.startswith("naive trial "):
            told.append(line)
        if len(told) == 2:
            os.killpg(tuning.pid, signal.SIGKILL)
            break
    tuning.wait()
    import optuna

    storage = f"sqlite:///{tmp_path}/studies.db"
    before = optuna.load_study(study_name="split-digits/naive", storage=storage).trials
    finished = [t for t in before if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    after = optuna.load_study(study_name="split-digits/naive", storage=storage).trials
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4  # the budget, not more
    assert [(t.number, t.value, t.params) for t in complete[:2]] == [
        (t.number, t.value, t.params) for t in finished
    ]
    left = [t for t in before if t.state == optuna.trial.TrialState.RUNNING]
    for trial in left:  # cut short by the kill: run again and told, not left running
        assert f"naive trial {trial.number + 1} was cut short" in again.stdout
    assert not [t for t in after if t.state == optuna.trial.TrialState.RUNNING]


def test_searched_tuple_fields_get_one_value_per_layer():
    from baselines.gpm import GPMParams
    from clbench.tuning.space import field_value

    assert field_types(GPMParams)["threshold"] == tuple[float, ...]
    assert field_value(GPMParams, "threshold", 0.95) == (0.95,)
    assert sampled_value((0.95, 0.99)) is None and sampled_value((0.97,)) == 0.97


class BatchExecutor:
    """An executor that takes whole lists of runs, as the Ray and SLURM ones do."""

    jobs = 2

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run_all(self, specs, results_dir):
        assert isinstance(specs, list)
        self.batches.append(len(specs))
        for spec in specs:
            yield execute(spec, results_dir)


def test_executors_that_take_lists_get_trials_in_batches_of_their_jobs(tmp_path):
    executor = BatchExecutor()
    summary = tune(quick_options(tmp_path, ["naive"], 5), executor, say=lambda line: None)
    assert executor.batches == [2, 2, 1]
    assert summary["split-digits/naive"]["finished"] == 5


@pytest.mark.slow
def test_the_report_sets_tuned_against_presets_with_the_budget(tmp_path):
    tuning, presets = tmp_path / "tuning", tmp_path / "presets"
    summary = tune(quick_options(tuning, ["naive", "ewc"], 2), say=lambda line: None)
    suite = {**load_suite(str(tuning / "tuned.toml")), "seeds": [0]}
    run_sweep(expand(suite), tuning / "runs", say=lambda line: None)
    run_sweep(
        [
            RunSpec("split-digits", s, overrides={"protocol": {"epochs": 2}})
            for s in ("naive", "ewc")
        ],
        presets,
        say=lambda line: None,
    )
    out = tmp_path / "report"
    write_report(presets, out, ReportOptions(figures=(), tuning=tuning))
    table = pd.read_csv(out / "tables" / "split-digits-tuning.csv").set_index("strategy")
    for strategy in ("naive", "ewc"):
        study = summary[f"split-digits/{strategy}"]
        (tuned,) = [read_result(p) for p in (tuning / "runs").glob(f"*__{strategy}__*.json")]
        (preset,) = [read_result(p) for p in presets.glob(f"*__{strategy}__*.json")]
        row = table.loc[strategy]
        assert row["trials"] == "2 (0)"
        assert row["valid_presets"] == study["preset_score"]
        assert row["valid_tuned"] == study["best_score"]
        assert row["test_tuned_mean"] == pytest.approx(tuned["metrics"]["acc"])
        assert row["test_presets_mean"] == pytest.approx(preset["metrics"]["acc"])
    index = (out / "index.md").read_text()
    assert "## Tuned against presets" in index and "same budget of 2 finished trials" in index
    assert (out / "figures" / "split-digits-tuning.png").stat().st_size > 0


def test_joint_training_is_not_tuned_and_says_why_in_one_line(tmp_path):
    lines: list[str] = []
    summary = tune(quick_options(tmp_path, ["joint", "naive"], 2), say=lines.append)
    (refusal,) = [line for line in lines if "not tuned" in line]
    assert refusal.startswith("split-digits/joint: not tuned: protocol.evaluate_on=validation: ")
    assert "validation experiences mix tasks" in refusal
    assert summary["split-digits/joint"]["best_trial"] is None
    assert summary["split-digits/naive"]["finished"] == 2  # the next strategy is tuned
    assert "joint" not in load_suite(str(tmp_path / "tuned.toml"))["strategies"]
