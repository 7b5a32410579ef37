"""Faithfulness to the reference methods: frozen BatchNorm statistics, TRGP's memory weights,
DFGP's constant loss weights, NESS's Gram batch size and a faithful SI."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from baselines.dfgp import DFGPParams, FlatnessAscent
from baselines.trgp import scaled_weights
from clbench.models import ModelParams, build_model
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import STRATEGIES, StrategyBuild, StrategyPlugin, register_strategy
from clbench.strategies.projection import GradientProjection

BN_FREEZING = ["gpm", "sgp", "trgp", "dfgp", "ness"]


def running_statistics(checkpoint) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def bn_run(tmp_path, strategy):
    overrides = {"protocol": {"epochs": "1"}, "model": {"track_running_stats": "true"}}
    if strategy in ("gpm", "sgp", "trgp", "dfgp"):  # the preset's thresholds are the MLP's
        overrides[strategy] = {"threshold": "0.97"}
    spec = RunSpec("split-digits", strategy, model="small-cnn", overrides=overrides)
    result = run(spec, tmp_path, checkpoints=True)
    folder = tmp_path / f"{result['name']}.ckpt"
    return running_statistics(folder / "task1.pt"), running_statistics(folder / "task5.pt")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BN_FREEZING)
def test_running_statistics_freeze_after_task_0(tmp_path, strategy):
    after_first, after_last = bn_run(tmp_path, strategy)
    assert after_first and after_first.keys() == after_last.keys()
    for name, value in after_first.items():
        assert torch.equal(value, after_last[name]), name


def test_running_statistics_move_where_nothing_freezes_them(tmp_path):
    after_first, after_last = bn_run(tmp_path, "naive")
    assert any(not torch.equal(v, after_last[k]) for k, v in after_first.items())


@pytest.mark.parametrize(("memory_weights", "plain"), [("plain", True), ("scaled", False)])
def test_trgp_grows_its_memory_through_the_chosen_weights(
    monkeypatch, registered, memory_weights, plain
):
    """`seen`: which scales the layers compute with when the projection captures the memory."""
    seen, evaluated = [], []
    collect = GradientProjection.collect

    def spying_collect(self, strategy):
        seen.append({s.active for s in scaled_weights(strategy.model).values()})
        return collect(self, strategy)

    monkeypatch.setattr(GradientProjection, "collect", spying_collect)

    class EvalProbe(StrategyPlugin):
        def before_eval(self, strategy, **kwargs):
            evaluated.append({s.active for s in scaled_weights(strategy.model).values()})

    probe = EvalProbe()

    def build(model, params: STRATEGIES.get("trgp").params_type) -> StrategyBuild:
        built = STRATEGIES.get("trgp").factory(model, params)
        return StrategyBuild(plugins=[*built.plugins, probe], model=built.model)

    register_strategy("test-trgp-memory", build)
    overrides = {
        "protocol": {"epochs": "1"},
        "test-trgp-memory": {"memory_weights": memory_weights},
    }
    run(RunSpec("split-digits", "test-trgp-memory", overrides=overrides))
    assert len(seen) == 5
    expected = [{None} if plain else {t} for t in range(5)]
    assert seen == expected
    # after the memory grows, the task just trained computes with its own scales again
    assert evaluated == [{t} for t in range(5)]


def test_dfgp_mixing_weights_get_their_gradient_through_the_mixed_inputs_only():
    """The loss weights mean(lambda) are constants (the reference detaches them): lambda's
    gradient is that of the mixed loss through x_mix alone, which differs from the gradient with
    the weights attached."""
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 1, 2, ModelParams())
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 0, 1, 1, 1])
    t = torch.zeros(6, dtype=torch.long)
    strategy = SimpleNamespace(
        model=model, mb_x=x, mb_y=y, mb_task_id=t, device=torch.device("cpu"), loss=0.0
    )
    ascent = FlatnessAscent(DFGPParams(mixup_weight=1.0))
    ascent.before_backward(strategy)
    strategy.loss.backward()

    def lambda_gradient(weights_attached: bool) -> torch.Tensor:
        lam = ascent.lam.detach().clone().requires_grad_(True)
        mixed = (1 - lam.view(-1, 1, 1, 1)) * x + lam.view(-1, 1, 1, 1) * x[ascent.perm]
        out = model(mixed, t)
        share = lam.mean() if weights_attached else lam.detach().mean()
        loss = share * F.cross_entropy(out, y) + (1 - share) * F.cross_entropy(out, y[ascent.perm])
        return torch.autograd.grad(loss, lam)[0]

    torch.testing.assert_close(ascent.lam.grad, lambda_gradient(weights_attached=False))
    assert not torch.allclose(ascent.lam.grad, lambda_gradient(weights_attached=True))


@pytest.mark.parametrize(("setting", "expected"), [(None, 16), (5, 5)])
def test_ness_accumulates_its_gram_with_the_training_batch_size(monkeypatch, setting, expected):
    sizes = []
    loader_type = torch.utils.data.DataLoader

    def recording_loader(*args, **kwargs):
        sizes.append(kwargs.get("batch_size"))
        return loader_type(*args, **kwargs)

    monkeypatch.setattr("clbench.strategies.task_data.DataLoader", recording_loader)
    overrides = {"protocol": {"epochs": "1"}}
    if setting is not None:
        overrides["ness"] = {"gram_batch_size": str(setting)}
    run(RunSpec("split-digits", "ness", overrides=overrides))
    assert sizes and set(sizes) == {expected}  # split-digits trains with batches of 16


@pytest.mark.slow
def test_si_differs_from_fine_tuning_and_forgets_less_on_split_mnist5k():
    naive = run(RunSpec("split-mnist5k", "naive", seed=0))
    si = run(RunSpec("split-mnist5k", "si", seed=0))
    assert si["accuracy_matrix"] != naive["accuracy_matrix"]
    assert si["metrics"]["forgetting"] < naive["metrics"]["forgetting"]
    assert si["tasks"][1]["kept_bytes"] == 2 * 4 * si["total_params"]  # Omega and theta*
