"""Properties of NESS (baselines/ness) and its adapters."""

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import fake_strategy, restored_registries
from torch import nn

from baselines.ness import (
    NESSParams,
    NESSPlugin,
    direct_is_cheaper,
    ness,
    null_space_basis,
)
from baselines.ness.adapters import adapter_of, add_adapter, merge_adapters
from clbench.data import BENCHMARKS, DataOptions
from clbench.data.benchmark import to_scenario
from clbench.linalg import capture_representations
from clbench.models import ModelParams, build_model
from clbench.presets import NOTE_KEYS, load_presets
from clbench.protocol import ProtocolParams
from clbench.resolution import RunSpec
from clbench.runner import layer_weights, run
from clbench.strategies import STRATEGIES, StrategyBuild, StrategyPlugin, register_strategy
from clbench.strategies.projection import projected_layers
from clbench.strategies.sam import sam_gradient


def test_merged_and_unmerged_models_give_the_same_outputs():
    torch.manual_seed(0)
    model = build_model("small-cnn", (1, 8, 8), 2, 3, ModelParams()).eval()
    for layer in projected_layers(model).values():
        d = layer.weight[0].numel()
        update = add_adapter(layer, torch.linalg.qr(torch.randn(d, 3)).Q)
        nn.init.normal_(update.A)
    x, t = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 0, 1, 1])
    wrapped = model(x, t)
    merge_adapters(model)
    assert all(adapter_of(layer) is None for layer in projected_layers(model).values())
    assert isinstance(model.backbone.conv1, nn.Conv2d) and type(model.backbone.conv1) is nn.Conv2d
    torch.testing.assert_close(model(x, t), wrapped, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [2, 500])  # factored form below out * d / (d + out) rows
def test_adapted_linear_computes_w_plus_a_b_transpose_in_either_form(rows):
    gen = torch.Generator().manual_seed(0)
    layer = nn.Linear(30, 20, bias=False)
    update = add_adapter(layer, torch.linalg.qr(torch.randn(30, 6, generator=gen)).Q)
    with torch.no_grad():
        update.A.copy_(torch.randn(20, 6, generator=gen))
    x = torch.randn(rows, 30, generator=gen)
    output = layer(x)
    effective = layer.parametrizations.weight.original + update.A @ update.basis.T
    torch.testing.assert_close(output, x @ effective.T)
    output.square().sum().backward()
    grad_w = 2 * (x @ effective.T).T @ x  # d loss / d W_effective
    torch.testing.assert_close(update.A.grad, grad_w @ update.basis)  # chain rule through A B^T
    merge_adapters(layer)
    assert type(layer) is nn.Linear
    torch.testing.assert_close(layer(x), output.detach())


def test_adapter_freezes_w_and_b_and_starts_from_zero():
    layer = nn.Linear(4, 3, bias=False)
    before = layer.weight.detach().clone()
    update = add_adapter(layer, torch.eye(4)[:, :2])
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == [
        "parametrizations.weight.0.A"
    ]
    torch.testing.assert_close(layer.weight, before)  # A = 0: the same function at the boundary
    assert update.A.shape == (3, 2) and not update.basis.requires_grad


def test_null_space_rank_follows_eps1_by_hand():
    Q = torch.linalg.qr(
        torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ).Q
    G = (Q * torch.tensor([100.0, 1.0, 0.01, 1e-6], dtype=torch.float64)) @ Q.T
    # sigma = 10, 1, 0.1, 0.001 (sum 11.101)
    basis, complement, stats = null_space_basis(G, eps1=0.005)  # tol 0.0555: only 0.001
    assert stats["rank"] == 1 and stats["sigma_sum"] == pytest.approx(11.101)
    assert abs(float(basis[:, 0] @ Q[:, 3])) == pytest.approx(1.0)
    assert complement.shape == (4, 3) and float((complement.T @ basis).abs().max()) < 1e-12
    basis, _, stats = null_space_basis(G, eps1=0.05)  # tol 0.555: 0.1 and 0.001
    assert stats["rank"] == 2 and stats["null_energy"] == pytest.approx(0.01 + 1e-6)
    assert float((basis.T @ Q[:, :2]).abs().max()) < 1e-10  # orthogonal to the kept directions
    assert null_space_basis(G, eps1=0.5)[2]["rank"] == 3


def test_negative_float32_eigenvalues_are_clamped_not_nan():
    Q = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(2))).Q
    G = (Q * torch.tensor([100.0, 1.0, 0.01, -1e-4])) @ Q.T  # float32, one negative eigenvalue
    assert float(torch.linalg.eigvalsh(G).min()) < 0
    basis, _, stats = null_space_basis(G, eps1=0.001)
    assert torch.isfinite(basis).all() and all(v == v for v in stats.values())
    assert stats["rank"] == 1  # the clamped eigenvalue gives sigma = 0, inside the null space


def test_full_rank_layers_get_no_adapter():
    plugin = NESSPlugin(NESSParams(eps1=0.0, source="gram"))
    model = build_model("mlp", (1, 4, 4), 2, 2, ModelParams())
    plugin.grams = {
        name: torch.eye(layer.weight.shape[1], dtype=torch.float64)
        for name, layer in projected_layers(model).items()
    }
    plugin.before_training_exp(fake_strategy(model, task=1, protocol=ProtocolParams()))
    assert all(adapter_of(layer) is None for layer in projected_layers(model).values())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["heads.1.weight"]  # nothing else may move


def test_sam_gradient_is_the_gradient_at_the_perturbed_point():
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    model = nn.Module()
    model.w = w
    curvature = torch.tensor([1.0, 2.0])

    def loss():
        return 0.5 * (curvature * model.w**2).sum()

    loss().backward()  # g = curvature * w = (3, 8)
    sam_gradient(model, rho=0.5, loss_at_current_batch=loss)
    g = torch.tensor([3.0, 8.0])
    perturbed = torch.tensor([3.0, 4.0]) + 0.5 * g / g.norm()
    torch.testing.assert_close(w.grad, curvature * perturbed)
    torch.testing.assert_close(w.detach(), torch.tensor([3.0, 4.0]))  # weights restored


class BoundProbe(StrategyPlugin):
    """After NESS builds its adapters, records each previous task's inputs to every adapted layer;
    after training, the interference ratio of each (task, layer) and the module's bound."""

    def __init__(self, ness_plugin):
        super().__init__()
        self.ness = ness_plugin
        self.inputs = {}
        self.checks = []

    def before_training_exp(self, strategy, **kwargs):
        model = strategy.model
        layers = {n: m for n, m in projected_layers(model).items() if adapter_of(m) is not None}
        model.eval()
        self.inputs = {}
        for j, dataset in enumerate(self.ness.past_data):
            x = torch.stack([dataset[i][0] for i in range(len(dataset))])
            t = torch.full((len(x),), j)
            self.inputs[j] = capture_representations(model, lambda x=x, t=t: model(x, t), layers)
        model.train()

    def after_training_exp(self, strategy, **kwargs):
        layers = projected_layers(strategy.model)
        for j, per_layer in self.inputs.items():
            for name, X in per_layer.items():
                update = adapter_of(layers[name])
                W = layers[name].parametrizations.weight.original.detach().flatten(1)
                A, B = update.A.detach(), update.basis
                ratio = float((A @ B.T @ X).norm() / (W @ X).norm())
                spectrum = self.ness.spectra[name]
                bound = float(torch.linalg.matrix_norm(A, 2)) * spectrum["null_energy"] ** 0.5
                bound /= float((W @ X).norm())
                task = self.task_index(strategy)
                self.checks.append((task, j, name, ratio, bound, float(A.norm())))


def test_interference_on_every_previous_task_is_within_the_eps1_bound(registered):
    probes = []

    def probed(model, params: NESSParams) -> StrategyBuild:
        built = ness(model, params)
        probes.append(BoundProbe(built.plugins[0]))
        return StrategyBuild(plugins=[*built.plugins, probes[-1]])

    register_strategy("test-ness-probe", probed)
    result = run(
        RunSpec(
            "split-digits",
            "test-ness-probe",
            model="small-cnn",
            overrides={
                "protocol": {"epochs": 4, "lr": 0.01, "momentum": 0.9},
                "test-ness-probe": {"eps1": 0.01, "route": "factored"},
            },
        )
    )
    checks = probes[0].checks
    layers = {name for _, _, name, *_ in checks}
    assert {"backbone.conv2", "backbone.fc1"} <= layers  # a conv and a linear layer
    assert {(task, j) for task, j, *_ in checks} == {(t, j) for t in range(1, 5) for j in range(t)}
    for task, j, name, ratio, bound, a_norm in checks:
        assert a_norm > 0, (task, name)  # the adapter did learn
        assert ratio <= bound * (1 + 1e-4) + 1e-7, (task, j, name, ratio, bound)
    # the optimizer held exactly the adapters and the current head
    for record in result["tasks"][1:]:
        model = build_model("small-cnn", (1, 8, 8), 5, 2, ModelParams())
        outs = {n: m.weight.shape[0] for n, m in projected_layers(model).items()}
        ranks = record["subspaces"]["null-space rank"]
        assert ranks == {n: s["rank"] for n, s in record["null_space"].items()}
        expected = sum(outs[n] * r for n, r in ranks.items()) + 128 * 2
        assert record["trainable_params"] == expected


@pytest.mark.slow
def test_raw_and_gram_sources_keep_what_they_say():
    quick = {"protocol": {"epochs": 2}}
    raw = run(RunSpec("split-digits", "ness", overrides={**quick, "ness": {"source": "raw"}}))
    gram = run(RunSpec("split-digits", "ness", overrides={**quick, "ness": {"source": "gram"}}))
    # raw: every past training sample, as float32 8x8 image + label + task label
    scenario = to_scenario(
        BENCHMARKS.get("split-digits").build(DataOptions(Path("."), False, 0)),
        raw["spec"]["protocol"]["pc_valid"],
        0,
    )
    sizes = [len(exp.dataset) for exp in scenario.train_stream]
    per_sample = 64 * 4 + 8 + 8
    for t, record in enumerate(raw["tasks"]):
        assert record["kept_bytes"] == per_sample * sum(sizes[: t + 1])
    # gram: one float64 d x d matrix per adapted layer (the MLP's inputs: 64 and 100), constant
    assert {t["kept_bytes"] for t in gram["tasks"]} == {(64 * 64 + 100 * 100) * 8}


class EffectiveWeights(StrategyPlugin):
    """Every layer's effective weight after every optimizer step; it keeps nothing the strategy
    owns."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def after_update(self, strategy, **kwargs):
        self.steps.append(layer_weights(strategy.model))


def ness_run_traced(route: str, benchmark: str = "split-digits", protocol=None):
    trace = EffectiveWeights()
    ness_strategy = STRATEGIES.get("ness")

    def build(model, params: NESSParams) -> StrategyBuild:
        built = ness_strategy.factory(model, params)
        return StrategyBuild(plugins=[*built.plugins, trace])

    with restored_registries():
        register_strategy("test-ness-route", build)
        # NESS's own protocol of the preset (momentum 0.9, weight decay 1e-4, lr_scale 0.1)
        own = load_presets()[benchmark]["strategy_protocol"]["ness"]
        own = {k: v for k, v in own.items() if k not in NOTE_KEYS}
        overrides = {
            "protocol": protocol or {"epochs": "2"},
            "test-ness-route": {"route": route, **{f"protocol.{k}": v for k, v in own.items()}},
        }
        result = run(RunSpec(benchmark, "test-ness-route", overrides=overrides))
    return result, trace


def test_the_direct_route_gives_the_factored_iterates_step_for_step():
    """With SGD, momentum 0.9 and weight decay, training W in span(B) directly equals training A
    of W + A B^T: the effective weights agree after every step of a whole run (rtol 1e-5)."""
    quick = {"epochs": "3", "lr": "0.5"}  # NESS's own lr_scale makes it 0.05 with momentum 0.9
    factored, factored_trace = ness_run_traced("factored", protocol=quick)
    direct, direct_trace = ness_run_traced("direct", protocol=quick)
    assert all(set(t["ness_routes"].values()) <= {"factored"} for t in factored["tasks"])
    assert any(set(t["ness_routes"].values()) == {"direct"} for t in direct["tasks"])
    assert len(factored_trace.steps) == len(direct_trace.steps) > 100
    for step, (a, b) in enumerate(zip(factored_trace.steps, direct_trace.steps, strict=True)):
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=f"{step} {name}")
    assert [t["trainable_params"] for t in direct["tasks"]] == [
        t["trainable_params"] for t in factored["tasks"]
    ]  # out x r either way
    moved = [t["parameter_distance"]["total"] for t in direct["tasks"][1:]]
    assert min(moved) > 0.1  # the null-space updates are not vanishing
    assert np.allclose(direct["accuracy_matrix"], factored["accuracy_matrix"], atol=0.5)
    assert min(row[t] for t, row in enumerate(direct["accuracy_matrix"])) > 60  # beyond chance (50)


def test_auto_takes_the_direct_route_where_the_null_space_is_large():
    layer = nn.Linear(784, 100, bias=False)
    assert direct_is_cheaper(layer, r=530, rows=10)  # pmnist's first layer
    assert not direct_is_cheaper(layer, r=20, rows=10)  # a small null space: the adapter
    assert not direct_is_cheaper(nn.Conv2d(3, 8, 3), r=20, rows=10)  # convolutions: factored
