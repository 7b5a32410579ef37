"""Properties of the shared gradient-projection machinery and of GPM and SGP."""

import pytest
import torch
from fakes import fake_strategy
from probes import assert_same_steps, traced_run

from baselines.dfgp import DFGPParams, dfgp
from baselines.gpm import GPMMemory, GPMParams, gpm
from baselines.sgp import SGPMemory, SGPParams
from clbench.errors import ConfigError
from clbench.linalg import Projection
from clbench.memory import kept_bytes
from clbench.models import ModelParams, build_model
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import StrategyBuild, StrategyPlugin, register_strategy
from clbench.strategies.input_projection import (
    InputProjectedLinear,
    project_inputs,
    stop_projecting_inputs,
)
from clbench.strategies.projection import (
    GradientProjection,
    layer_thresholds,
    projected_layers,
)


def orthonormal(d: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, k, generator=gen)).Q


def model_with_grads(name="small-cnn", shape=(1, 8, 8), heads=3, seed=0):
    torch.manual_seed(seed)
    model = build_model(name, shape, heads, 2, ModelParams())
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    return model


def plugin_at_task_1(memory, params, model):
    """The projection with a basis for every layer, as after task 0; call its hooks with
    `fake_strategy(model, task=1)`."""
    plugin = GradientProjection(memory, params)
    for name, layer in projected_layers(model).items():
        d = layer.weight[0].numel()
        memory.bases[name] = orthonormal(d, d // 3, seed=len(name))
    return plugin


def flat(layer):
    return layer.weight.grad.view(layer.weight.shape[0], -1)


def test_gpm_gradients_have_no_component_in_the_kept_basis():
    model = model_with_grads()
    params = GPMParams(threshold=(0.97,), layer_caps=())
    memory = GPMMemory(params)
    plugin = plugin_at_task_1(memory, params, model)
    before = {n: flat(layer).clone() for n, layer in projected_layers(model).items()}
    heads_before = [h.weight.grad.clone() for h in model.heads]
    plugin.after_backward(fake_strategy(model, task=1))
    for name, layer in projected_layers(model).items():
        M = memory.bases[name]
        assert float((flat(layer) @ M).abs().max()) < 1e-5
        # the part orthogonal to M is untouched
        residual = before[name] - before[name] @ M @ M.T
        torch.testing.assert_close(flat(layer), residual, atol=1e-5, rtol=1e-5)
    for head, grad in zip(model.heads, heads_before, strict=True):
        torch.testing.assert_close(head.weight.grad, grad)  # task heads are never projected
    for name, p in model.named_parameters():
        if p.dim() == 1 and not name.startswith("heads."):
            assert (p.grad == 0).all(), name  # BatchNorm frozen after task 0


def test_nothing_changes_on_task_0():
    model = model_with_grads()
    grads = [p.grad.clone() for p in model.parameters()]
    params = GPMParams(layer_caps=())
    plugin = GradientProjection(GPMMemory(params), params)
    plugin.after_backward(fake_strategy(model, task=0))
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_sgp_scales_the_component_along_each_basis_vector_by_one_minus_lambda():
    model = model_with_grads()
    params = SGPParams(layer_caps=())
    memory = SGPMemory(params)
    plugin = plugin_at_task_1(memory, params, model)
    for name, basis in memory.bases.items():
        memory.importance[name] = torch.linspace(0.0, 1.0, basis.shape[1])
    before = {n: flat(layer).clone() for n, layer in projected_layers(model).items()}
    plugin.after_backward(fake_strategy(model, task=1))
    for name, layer in projected_layers(model).items():
        M, lam = memory.bases[name], memory.importance[name]
        torch.testing.assert_close(
            flat(layer) @ M, (before[name] @ M) * (1 - lam), atol=1e-5, rtol=1e-4
        )
        P_out = torch.eye(M.shape[0]) - M @ M.T  # onto the complement of span(M)
        torch.testing.assert_close(flat(layer) @ P_out, before[name] @ P_out, atol=1e-5, rtol=1e-4)


def test_sgp_with_all_importances_one_is_gpm():
    gpm_model, sgp_model = model_with_grads(seed=1), model_with_grads(seed=1)
    gpm_params, sgp_params = GPMParams(layer_caps=()), SGPParams(layer_caps=())
    gpm_plugin = plugin_at_task_1(GPMMemory(gpm_params), gpm_params, gpm_model)
    sgp_memory = SGPMemory(sgp_params)
    sgp_plugin = plugin_at_task_1(sgp_memory, sgp_params, sgp_model)
    for name, basis in sgp_memory.bases.items():
        sgp_memory.importance[name] = torch.ones(basis.shape[1])
    gpm_plugin.after_backward(fake_strategy(gpm_model, task=1))
    sgp_plugin.after_backward(fake_strategy(sgp_model, task=1))
    for a, b in zip(gpm_model.parameters(), sgp_model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_a_single_shared_head_is_projected_task_heads_are_not():
    single = build_model("mlp", (1, 28, 28), 1, 10, ModelParams())
    multi = build_model("mlp", (1, 28, 28), 3, 10, ModelParams())
    assert list(projected_layers(single)) == ["backbone.net.1", "backbone.net.3", "heads.0"]
    assert list(projected_layers(multi)) == ["backbone.net.1", "backbone.net.3"]


def test_basis_sizes_and_bytes_follow_the_energy_rule_by_hand():
    """Layer "a" (d = 4) sees data with energies 0.6, 0.3, 0.08, 0.02 along e1..e4."""
    params = GPMParams(threshold=(0.95,), threshold_increment=0.0, layer_caps=())
    memory = GPMMemory(params)
    energies = torch.tensor([0.6, 0.3, 0.08, 0.02], dtype=torch.float64)
    R = torch.diag(energies.sqrt()).float()  # d x n with n = 4
    memory.update(0, {"a": R})
    # cumulative energy 0.6, 0.9, 0.98, 1.0: two values below 0.95 -> r = 2
    assert memory.sizes() == {"a": 2}
    assert kept_bytes([GradientProjection(memory, params)]) == 4 * 2 * 4  # float32 4 x 2
    # Task 1: data along e3 only. acc = (1 - 1) / 1 = 0 < 0.95 -> add e3 (energy 1.0).
    memory.update(1, {"a": torch.tensor([[0.0], [0.0], [2.0], [0.0]])})
    assert memory.sizes() == {"a": 3}
    M = memory.bases["a"]
    torch.testing.assert_close(M.T @ M, torch.eye(3), atol=1e-6, rtol=0)
    assert abs(float(M[2, 2])) == pytest.approx(1.0)
    # Task 2: data already inside span(M): nothing to add.
    memory.update(2, {"a": torch.tensor([[1.0], [1.0], [1.0], [0.0]])})
    assert memory.sizes() == {"a": 3}


def test_thresholds_per_layer_with_increment():
    assert layer_thresholds((0.97,), 0.003, 2, ["a", "b"]) == pytest.approx(
        {"a": 0.976, "b": 0.976}
    )
    assert layer_thresholds((0.95, 0.99), 0.0, 5, ["a", "b"]) == {"a": 0.95, "b": 0.99}
    assert layer_thresholds((0.999,), 0.003, 3, ["a"]) == {"a": 1.0}
    with pytest.raises(ConfigError, match="threshold has 2 values but the model has 3 projected"):
        layer_thresholds((0.9, 0.9), 0.0, 0, ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"threshold value 1.5 must lie in \(0, 1\]"):
        GPMParams(threshold=(1.5,))


class Snapshots(StrategyPlugin):
    """Weights and bases after every task (runs after the projection plugin has updated)."""

    def __init__(self, projection):
        super().__init__()
        self.projection = projection
        self.weights, self.bases = [], []

    def after_training_exp(self, strategy, **kwargs):
        layers = projected_layers(strategy.model)
        self.weights.append({n: m.weight.detach().clone() for n, m in layers.items()})
        self.weights[-1]["bn"] = [
            p.detach().clone()
            for n, p in strategy.model.named_parameters()
            if p.dim() == 1 and not n.startswith("heads.")
        ]
        self.bases.append({n: b.clone() for n, b in self.projection.memory.bases.items()})


@pytest.mark.parametrize("factory", [gpm, dfgp])
def test_whole_task_updates_lie_in_the_complement_of_the_previous_basis(factory, registered):
    """Plain SGD over projected gradients (for DFGP: the flatness-ascent gradient, projected):
    W_t - W_{t-1} has no component in span(M_{t-1}); BatchNorm stays as task 0 left it."""
    probes = []
    params_type = DFGPParams if factory is dfgp else GPMParams

    def probed(model, params: params_type) -> StrategyBuild:
        built = factory(model, params)
        projection = next(p for p in built.plugins if isinstance(p, GradientProjection))
        probes.append(Snapshots(projection))
        return StrategyBuild(plugins=[*built.plugins, probes[-1]])

    register_strategy("test-probed", probed)
    overrides = {"protocol": {"epochs": 3}, "test-probed": {"threshold": "0.9"}}
    run(RunSpec("split-digits", "test-probed", model="small-cnn", overrides=overrides))
    probe = probes[0]
    checked = 0
    for t in range(1, 5):
        for name, basis in probe.bases[t - 1].items():
            delta = (probe.weights[t][name] - probe.weights[t - 1][name]).flatten(1)
            assert delta.norm() > 0, (t, name)  # the layer did learn
            leak = (delta @ basis).norm() / delta.norm()
            assert leak < 1e-4, (t, name, float(leak))
            checked += basis.shape[1] > 0
        for before, after in zip(probe.weights[t - 1]["bn"], probe.weights[t]["bn"], strict=True):
            torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert checked >= 4 * 3


def gpm_after_backward(model, params: GPMParams) -> StrategyBuild:
    """GPM with every layer projected after backward (as DFGP's projection runs)."""
    memory = GPMMemory(params)
    return StrategyBuild(plugins=[GradientProjection(memory, params, project_in_backward=False)])


def test_dfgp_without_mixup_and_ascent_is_gpm_step_for_step():
    """DFGP reduces to GPM exactly; GPM projecting inside the layers' backward follows GPM
    projecting after backward up to rounding over a whole run."""
    shared = {"threshold": "0.95,0.99", "threshold_increment": "0", "samples": "100"}
    _, after_trace = traced_run(gpm_after_backward, GPMParams, shared)
    _, dfgp_trace = traced_run(dfgp, DFGPParams, {**shared, "mixup_weight": "0", "rho": "0"})
    assert_same_steps(after_trace, dfgp_trace)
    _, inside_trace = traced_run(gpm, GPMParams, shared)
    assert len(inside_trace.steps) == len(after_trace.steps)
    for inside, after in zip(inside_trace.steps[-1], after_trace.steps[-1], strict=True):
        torch.testing.assert_close(inside, after, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows", [6, 40])  # fewer rows than outputs: input side; more: weight side
@pytest.mark.parametrize("with_scale", [False, True])
def test_projection_inside_backward_equals_projection_after_backward(rows, with_scale):
    """A Linear layer projecting in its backward gives the gradient that projecting after
    backward gives, has no component in the kept basis, and leaves the input gradient alone."""
    torch.manual_seed(0)
    d, out, k = 30, 20, 9
    M = orthonormal(d, k, seed=3)
    scale = torch.linspace(0.2, 1.0, k) if with_scale else None
    x = torch.randn(rows, d)
    plain, inside = torch.nn.Linear(d, out), torch.nn.Linear(d, out)
    inside.load_state_dict(plain.state_dict())
    project_inputs(inside, Projection.of(M, scale, like=inside.weight))
    target = torch.randn(rows, out)
    inputs = []
    for layer in (plain, inside):
        inputs.append(x.clone().requires_grad_(True))
        ((layer(inputs[-1]) - target) ** 2).sum().backward()
    assert isinstance(inside, torch.nn.Linear)
    grad = inside.weight.grad
    after = Projection.of(M, scale, like=plain.weight.grad)(plain.weight.grad)
    torch.testing.assert_close(grad, after, atol=1e-5, rtol=1e-5)
    if scale is None:
        assert float((grad @ M).norm() / grad.norm()) < 1e-6
    torch.testing.assert_close(inside.bias.grad, plain.bias.grad)
    torch.testing.assert_close(inputs[1].grad, inputs[0].grad)
    stop_projecting_inputs(inside)
    assert type(inside) is torch.nn.Linear and not hasattr(inside, "projection")


def test_gpm_projects_linear_layers_in_backward_during_a_task_only():
    """From task 1 on, GPM's plain Linear layers project in their backward (so after_backward
    leaves them alone); after the task they are plain layers again. DFGP opts out: its ascent
    reads the raw gradient of its first backward."""
    model = build_model("mlp", (1, 8, 8), 1, 3, ModelParams())
    params = GPMParams(layer_caps=())
    memory = GPMMemory(params)
    plugin = plugin_at_task_1(memory, params, model)
    strategy = fake_strategy(model, task=1)
    plugin.before_training_exp(strategy)
    layers = projected_layers(model)
    assert all(isinstance(layer, InputProjectedLinear) for layer in layers.values())
    assert plugin.targets(model).projected == []
    x = torch.randn(5, 1, 8, 8)
    torch.nn.functional.cross_entropy(model(x, 0), torch.tensor([0, 1, 2, 0, 1])).backward()
    for name, layer in layers.items():
        assert float((layer.weight.grad @ memory.bases[name]).abs().max()) < 1e-5
    for layer in layers.values():
        stop_projecting_inputs(layer)
    assert not any(isinstance(layer, InputProjectedLinear) for layer in layers.values())

    dfgp_params = DFGPParams(layer_caps=())
    built = dfgp(model, dfgp_params)
    projection = next(p for p in built.plugins if isinstance(p, GradientProjection))
    projection.memory.bases.update(memory.bases)
    projection.before_training_exp(strategy)
    assert not any(isinstance(layer, InputProjectedLinear) for layer in layers.values())
    assert len(projection.targets(model).projected) == len(layers)
