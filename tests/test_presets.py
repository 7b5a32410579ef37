"""Preset precedence and fairness: every strategy of a benchmark moves at the same effective step
lr / (1 - momentum) unless a paper sets otherwise, and then the preset says why."""

import pytest

from clbench.errors import ConfigError
from clbench.protocol import effective_step
from clbench.runner import RunSpec, load_presets, resolve
from clbench.sweep import expand, load_suite, shipped_suites

PROJECTION_FAMILY = ("gpm", "sgp", "trgp", "dfgp")


def paper_reason(benchmark: str, strategy: str) -> str | None:
    own = load_presets().get(benchmark, {}).get("strategy_protocol", {}).get(strategy, {})
    return own.get("reason")


@pytest.mark.parametrize("suite", shipped_suites())
def test_every_shipped_suite_trains_every_strategy_at_one_effective_step(suite):
    groups: dict[tuple, dict[str, float]] = {}
    for spec in expand(load_suite(suite)):
        run = resolve(spec)
        shared = tuple(sorted(spec.overrides.get("protocol", {}).items()))
        steps = groups.setdefault((spec.benchmark, spec.seed, shared), {})
        if paper_reason(spec.benchmark, spec.strategy) is None:
            steps[f"{spec.strategy} {run.name}"] = effective_step(run.protocol)
    assert groups
    for (benchmark, _, _), steps in groups.items():
        assert len(set(steps.values())) == 1, (suite, benchmark, steps)


def test_a_suite_lr_reaches_a_momentum_strategy_as_the_same_effective_step():
    specs = [s for s in expand(load_suite("default")) if s.benchmark == "pmnist5k" and s.seed == 0]
    runs = {s.strategy: resolve(s) for s in specs}
    assert runs["gpm"].protocol.lr == 0.02 and runs["gpm"].protocol.momentum == 0
    ness = runs["ness"].protocol
    assert (ness.lr, ness.momentum, ness.lr_min) == (0.002, 0.9, 1e-6)
    assert effective_step(ness) == effective_step(runs["gpm"].protocol) == 0.02


def test_a_strategys_own_settings_win_at_every_level():
    shared = resolve(RunSpec("split-mnist5k", "ness", overrides={"protocol": {"lr": "0.1"}}))
    assert (shared.protocol.lr, shared.protocol.momentum) == (0.01, 0.9)  # scaled, not replaced
    own = resolve(RunSpec("split-mnist5k", "ness", overrides={"ness": {"protocol.lr": "0.3"}}))
    assert own.protocol.lr == 0.3 and own.protocol.lr_min == 1e-4  # an own lr replaces the scale
    paper = resolve(RunSpec("cifar100-10", "sgp", overrides={"protocol": {"lr": "0.2"}}))
    assert paper.protocol.lr == 0.05  # the SGP paper's own rate stands
    with pytest.raises(ConfigError, match=r"ness.protocol.lr_scale=-1.0 must be > 0"):
        resolve(RunSpec("split-mnist5k", "ness", overrides={"ness": {"protocol.lr_scale": "-1"}}))


def test_only_settings_that_a_paper_makes_say_why():
    presets = load_presets()
    for benchmark, preset in presets.items():
        base = resolve(RunSpec(benchmark, "naive")).protocol
        for strategy, own in preset.get("strategy_protocol", {}).items():
            step = effective_step(resolve(RunSpec(benchmark, strategy)).protocol)
            changes_step = step != effective_step(base)
            assert changes_step == ("reason" in own), (benchmark, strategy, step)


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


@pytest.mark.parametrize("strategy", PROJECTION_FAMILY)
@pytest.mark.parametrize("field", ["momentum", "weight_decay"])
def test_the_projection_family_refuses_momentum_and_weight_decay(strategy, field):
    spec = RunSpec("split-digits", strategy, overrides={"protocol": {field: "0.5"}})
    with pytest.raises(ConfigError, match=rf"protocol.{field}=0.5.*trains with plain SGD") as err:
        resolve(spec)
    assert "\n" not in str(err.value)


def test_trgp_trains_miniimagenet_for_200_epochs_as_its_reference():
    assert resolve(RunSpec("miniimagenet-20", "trgp")).protocol.epochs == 200
    assert resolve(RunSpec("miniimagenet-20", "gpm")).protocol.epochs == 100


def test_gpcns_takes_its_base_methods_preset_on_every_benchmark():
    # The gpcns tables copy TRGP's (thresholds, samples, caps and the trust-region fields), so
    # that every base runs with the settings the base itself has on the benchmark.
    for benchmark, preset in load_presets().items():
        strategies = preset.get("strategies", {})
        assert strategies.get("gpcns") == strategies.get("trgp"), benchmark
        gpcns = strategies["gpcns"]
        for base in ("gpm", "sgp"):
            for key, value in strategies[base].items():
                assert gpcns.get(key, value) == value, (benchmark, base, key)
            assert {"threshold", "threshold_increment", "samples"} <= gpcns.keys(), benchmark
