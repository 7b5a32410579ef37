"""Preset precedence and fairness: every strategy of a benchmark moves at the same effective step
lr / (1 - momentum) unless its own rate says where it comes from; what the user types wins."""

import dataclasses
from importlib import resources

import pytest

from baselines.gpcns import GPCNSOverGPM, GPCNSOverSGP, GPCNSOverTRGP
from clbench.errors import ConfigError
from clbench.presets import expand_presets, load_presets
from clbench.protocol import effective_step
from clbench.resolution import RunSpec, resolve
from clbench.sweep import expand, load_suite, shipped_suites
from clbench.tuning.output import HEADER

PROJECTION_FAMILY = ("gpm", "sgp", "trgp", "dfgp")
LEVEL_ORIGINS = ("preset [", "suite", "typed by the user", "default of")


def lr_source(run) -> str:
    return next(s.source for s in run.card if s.name == "protocol.lr")


def explained(source: str) -> bool:
    """A source that says where a value comes from: a script or log line, or a stated choice."""
    return not source.startswith(LEVEL_ORIGINS)


def written_by_hand(suite: str) -> bool:
    """Not a suite `clbench tune` wrote (its rates are each strategy's tuned one, by design;
    tests/test_committed_results.py checks them against their studies)."""
    return (
        not (resources.files("clbench") / "suites" / f"{suite}.toml").read_text().startswith(HEADER)
    )


@pytest.mark.slow
@pytest.mark.parametrize("suite", [s for s in shipped_suites() if written_by_hand(s)])
def test_every_shipped_suite_trains_at_one_effective_step_or_says_why(suite):
    """Within a suite's benchmark and shared settings, a strategy whose effective step differs
    from fine-tuning's states the source of its rate (the paper's script, or clbench's reason)."""
    checked = 0
    for spec in expand(load_suite(suite)):
        naive = RunSpec(
            spec.benchmark, "naive", overrides={"protocol": spec.overrides.get("protocol", {})}
        )
        run = resolve(spec)
        if effective_step(run.protocol) != effective_step(resolve(naive).protocol):
            assert explained(lr_source(run)), (suite, spec.benchmark, spec.strategy, lr_source(run))
        checked += 1
    assert checked


def test_a_suite_lr_reaches_a_momentum_strategy_as_the_same_effective_step():
    specs = [s for s in expand(load_suite("default")) if s.benchmark == "pmnist5k" and s.seed == 0]
    runs = {s.strategy: resolve(s) for s in specs}
    assert runs["gpm"].protocol.lr == 0.02 and runs["gpm"].protocol.momentum == 0
    ness = runs["ness"].protocol
    assert (ness.lr, ness.momentum, ness.lr_min) == (0.002, 0.9, 1e-6)
    assert effective_step(ness) == effective_step(runs["gpm"].protocol) == 0.02
    assert lr_source(runs["ness"]).startswith("lr_scale 0.1")


def test_shipped_levels_keep_a_strategys_own_settings_over_shared_ones():
    suite = resolve(RunSpec("split-mnist5k", "ness", overrides={"protocol": {"lr": "0.1"}}))
    assert (suite.protocol.lr, suite.protocol.momentum) == (0.01, 0.9)  # scaled, not replaced
    own = resolve(RunSpec("split-mnist5k", "ness", overrides={"ness": {"protocol.lr": "0.3"}}))
    assert own.protocol.lr == 0.3 and own.protocol.lr_min == 1e-4  # an own lr replaces the scale
    paper = resolve(RunSpec("cifar100-10", "sgp", overrides={"protocol": {"lr": "0.2"}}))
    assert paper.protocol.lr == 0.05  # a suite's shared rate leaves the SGP script's own
    with pytest.raises(ConfigError, match=r"ness.protocol.lr_scale=-1.0 must be > 0"):
        resolve(RunSpec("split-mnist5k", "ness", overrides={"ness": {"protocol.lr_scale": "-1"}}))


@pytest.mark.parametrize(
    ("benchmark", "strategy", "own_epochs"),
    [
        ("five-datasets", "ness", 200),
        ("miniimagenet-20", "trgp", 200),
        ("cifar100-10", "adam-nscl", 80),
        ("miniimagenet-20", "gpcns", 200),
    ],
)
def test_a_typed_shared_value_applies_to_a_strategy_with_its_own(benchmark, strategy, own_epochs):
    assert resolve(RunSpec(benchmark, strategy)).protocol.epochs == own_epochs
    typed = resolve(RunSpec(benchmark, strategy, typed={"protocol": {"epochs": "1"}}))
    assert typed.protocol.epochs == 1
    card = {s.name: s.source for s in typed.card}
    assert card["protocol.epochs"] == "typed by the user"
    suite = resolve(RunSpec(benchmark, strategy, overrides={"protocol": {"epochs": "1"}}))
    assert suite.protocol.epochs == own_epochs  # shipped levels keep their precedence


def test_a_typed_rate_is_scaled_where_a_strategy_states_it_relative_to_the_benchmark():
    ness = resolve(RunSpec("pmnist5k", "ness", typed={"protocol": {"lr": "0.2"}}))
    assert (ness.protocol.lr, ness.protocol.momentum) == (0.02, 0.9)
    assert effective_step(ness.protocol) == 0.2
    sgp = resolve(RunSpec("cifar100-10", "sgp", typed={"protocol": {"lr": "0.2"}}))
    assert sgp.protocol.lr == 0.2 and sgp.protocol.lr_min == 5e-5  # typed lr, the script's lr_min


@pytest.mark.parametrize(
    ("benchmark", "strategy", "why"),
    [
        ("cifar100-10", "ness", "momentum 0.9"),
        ("cifar100-10", "adam-nscl", "optimizer adam"),
        ("split-mnist5k", "adam-nscl", "optimizer adam"),
    ],
)
def test_a_typed_rate_that_means_another_step_is_refused_in_one_line(benchmark, strategy, why):
    spec = RunSpec(benchmark, strategy, typed={"protocol": {"lr": "0.2"}})
    with pytest.raises(ConfigError, match=rf"protocol.lr=0.2 does not apply to {strategy}.*{why}"):
        resolve(spec)
    both = {"protocol": {"lr": "0.2"}, strategy: {"protocol.lr": "0.003"}}
    assert resolve(RunSpec(benchmark, strategy, typed=both)).protocol.lr == 0.003


def test_a_sweep_passes_what_was_typed_to_every_run():
    suite = {"benchmarks": ["five-datasets"], "strategies": ["naive", "ness"], "seeds": [0]}
    specs = expand(suite, typed={"protocol": {"epochs": "1"}, "ness": {"eps1": "0.01"}})
    runs = {s.strategy: resolve(s) for s in specs}
    assert {s: r.protocol.epochs for s, r in runs.items()} == {"naive": 1, "ness": 1}
    assert runs["ness"].strategy_params.eps1 == 0.01 and "ness" not in specs[0].typed


@pytest.mark.parametrize("benchmark", ["split-digits", "split-mnist5k", "pmnist5k", "pmnist"])
def test_ness_sam_uses_plain_sgd_at_the_same_effective_step(benchmark):
    sgdm = resolve(RunSpec(benchmark, "ness")).protocol
    sam = resolve(RunSpec(benchmark, "ness", overrides={"ness": {"optimizer": "sam"}})).protocol
    assert sgdm.momentum == 0.9 and sam.momentum == 0
    assert sam.lr == effective_step(sgdm) and sam.weight_decay == sgdm.weight_decay


@pytest.mark.parametrize(
    ("benchmark", "lr"), [("cifar100-10", 0.05), ("five-datasets", 0.1), ("miniimagenet-20", 0.1)]
)
def test_ness_sam_takes_the_papers_sam_rate(benchmark, lr):
    sam = resolve(RunSpec(benchmark, "ness", overrides={"ness": {"optimizer": "sam"}})).protocol
    assert (sam.lr, sam.momentum) == (lr, 0)
    typed = RunSpec(benchmark, "ness", typed={"ness": {"optimizer": "sam", "protocol.lr": "0.3"}})
    assert resolve(typed).protocol.lr == 0.3  # what the user types wins over the SAM table


@pytest.mark.parametrize("strategy", PROJECTION_FAMILY)
@pytest.mark.parametrize("field", ["momentum", "weight_decay"])
def test_the_projection_family_refuses_momentum_and_weight_decay(strategy, field):
    spec = RunSpec("split-digits", strategy, overrides={"protocol": {field: "0.5"}})
    with pytest.raises(ConfigError, match=rf"protocol.{field}=0.5.*trains with plain SGD") as err:
        resolve(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("benchmark", list(load_presets()))
@pytest.mark.parametrize("base", ["gpm", "sgp", "trgp"])
def test_gpcns_runs_its_base_methods_memory_settings_on_every_benchmark(benchmark, base):
    gpcns = resolve(RunSpec(benchmark, "gpcns", overrides={"gpcns": {"base": base}}))
    classes = {"gpm": GPCNSOverGPM, "sgp": GPCNSOverSGP, "trgp": GPCNSOverTRGP}
    assert type(gpcns.strategy_params) is classes[base]
    own = resolve(RunSpec(benchmark, base)).strategy_params
    fields = ["threshold", "threshold_increment", "samples", "layer_caps"]
    if base == "trgp":
        fields += ["trust_samples", "trust_threshold", "max_selected", "task2_selection"]
    for name in fields:
        assert getattr(gpcns.strategy_params, name) == getattr(own, name), (benchmark, name)
    # its tables extend the base's: every parameter of the base method resolves as the base's
    for field in dataclasses.fields(own):
        name = field.name
        assert getattr(gpcns.strategy_params, name) == getattr(own, name), (benchmark, name)


def test_extends_keeps_the_parents_notes_only_for_the_values_it_keeps():
    raw = {
        "a": {
            "protocol": {"epochs": 3, "lr": 0.1, "source": "a's choice"},
            "strategies": {"x": {"k": 1, "sources": {"k": "x's k"}}, "y": {"extends": "x"}},
        },
        "b": {"extends": "a", "protocol": {"epochs": 4}, "strategies": {"x": {"k": 2}}},
    }
    presets = expand_presets(raw)
    assert presets["b"]["protocol"] == {"epochs": 4, "lr": 0.1, "sources": {"lr": "a's choice"}}
    assert presets["b"]["strategies"]["y"] == {"k": 2}  # y extends b's own x, not a's
    assert presets["a"]["strategies"]["y"] == {"k": 1, "sources": {"k": "x's k"}}
    with pytest.raises(ConfigError, match="c extends itself"):
        expand_presets({"c": {"extends": "c"}})
