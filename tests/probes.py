"""Probe plugins shared by the tests: they observe a run and keep nothing the strategy owns."""

from fakes import restored_registries

from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import StrategyBuild, StrategyPlugin, register_strategy


class WeightTrace(StrategyPlugin):
    """Every weight after every optimizer step (kept by the test, not by the strategy: `kept` says
    nothing)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def after_update(self, strategy, **kwargs):
        self.steps.append([p.detach().clone() for p in strategy.model.parameters()])


def probed_run(factory, params_type, overrides, probe, benchmark="split-digits"):
    """Run `factory` for 2 epochs a task under a temporary name with the plugin `probe` appended
    after its own plugins; the result. `params_type` is the parameter class the run builds (for
    GPCNS, the class of the chosen base)."""

    def build(model, params: params_type) -> StrategyBuild:
        built = factory(model, params)
        return StrategyBuild(plugins=[*built.plugins, probe], model=built.model)

    with restored_registries():
        register_strategy("test-probed", build)
        spec_overrides = {"protocol": {"epochs": 2}, "test-probed": overrides}
        return run(RunSpec(benchmark, "test-probed", overrides=spec_overrides))


def traced_run(factory, params_type, overrides, benchmark="split-digits"):
    """`probed_run` with a `WeightTrace`; (result, trace)."""
    trace = WeightTrace()
    return probed_run(factory, params_type, overrides, trace, benchmark), trace


def assert_same_steps(first: WeightTrace, second: WeightTrace) -> None:
    assert len(first.steps) == len(second.steps) > 100
    for step, (a, b) in enumerate(zip(first.steps, second.steps, strict=True)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert x.shape == y.shape and bool((x == y).all()), (step, i)
