"""Properties of TRGP (baselines/trgp.py)."""

import torch
import torch.nn.functional as F
from fakes import fake_strategy

from baselines.gpm import GPMMemory, GPMParams
from baselines.trgp import TRGPMemory, TRGPParams, TrustRegionScaling, scaled_weights, trgp
from clbench.models import ModelParams, build_model
from clbench.resolution import RunSpec
from clbench.runner import run
from clbench.strategies import StrategyBuild, StrategyPlugin, register_strategy
from clbench.strategies.projection import (
    GradientProjection,
    projected_layers,
    weight_parameter,
)


def test_trgp_with_no_selected_task_is_gpm():
    """Same weights, same basis M, no old task selected: same outputs and the same projected
    weight gradients as GPM."""
    torch.manual_seed(0)
    plain = build_model("small-cnn", (1, 8, 8), 2, 2, ModelParams())
    scaled = build_model("small-cnn", (1, 8, 8), 2, 2, ModelParams())
    scaled.load_state_dict(plain.state_dict())
    trgp_params = TRGPParams(layer_caps=())
    trgp(scaled, trgp_params)  # the model transform
    for module in scaled_weights(scaled).values():
        module.configure(1, {})  # task 1, nothing in the trust region
        module.active = 1
    gpm_memory, trgp_memory = GPMMemory(GPMParams(layer_caps=())), TRGPMemory(trgp_params)
    for name, layer in projected_layers(plain).items():
        d = layer.weight[0].numel()
        basis = torch.linalg.qr(torch.randn(d, d // 2)).Q
        gpm_memory.bases[name] = trgp_memory.bases[name] = basis
    x, t, y = torch.randn(8, 1, 8, 8), torch.ones(8, dtype=torch.long), torch.randint(0, 2, (8,))
    for model, memory, params in (
        (plain, gpm_memory, GPMParams()),
        (scaled, trgp_memory, trgp_params),
    ):
        F.cross_entropy(model(x, t), y).backward()
        plugin = GradientProjection(memory, params)
        plugin.after_backward(fake_strategy(model, task=1))
    torch.testing.assert_close(plain(x, t), scaled(x, t))
    for (name, a), b in zip(
        projected_layers(plain).items(), projected_layers(scaled).values(), strict=True
    ):
        torch.testing.assert_close(a.weight.grad, weight_parameter(b).grad, msg=name)


class ScaleProbe(StrategyPlugin):
    """Snapshots each task's scales when it ends; at evaluation, the effective weights. Its
    snapshots are not the strategy's memory: it keeps nothing (`kept`)."""

    def __init__(self, scaling: TrustRegionScaling):
        super().__init__()
        self.scaling = scaling
        self.snapshots = {}
        self.checked = []

    def after_training_exp(self, strategy, **kwargs):
        task = self.task_index(strategy)
        self.snapshots[task] = {
            name: {
                k: v.detach().clone() for k, v in module.scales.items() if k.startswith(f"{task}_")
            }
            for name, module in scaled_weights(strategy.model).items()
        }

    def before_eval_forward(self, strategy, **kwargs):
        j = strategy.experience.current_experience
        trained = self.task_index(strategy)  # tasks trained so far
        if j >= trained or self.checked.count(j) or trained < 5:
            return
        for name, layer in projected_layers(strategy.model).items():
            W = weight_parameter(layer).detach()
            expected = W.clone()
            module = scaled_weights(strategy.model)[name]
            for key, Q in self.snapshots[j][name].items():
                k = int(key.split("_")[1])
                S = getattr(module, f"basis_{j}_{k}")
                expected += (W.flatten(1) @ S @ (Q - torch.eye(len(Q))) @ S.T).view_as(W)
            torch.testing.assert_close(layer.weight.detach(), expected, msg=(j, name))
        self.checked.append(j)


def test_evaluating_an_old_task_uses_that_tasks_own_scales(registered):
    probes = []

    def probed(model, params: TRGPParams) -> StrategyBuild:
        built = trgp(model, params)
        probes.append(ScaleProbe(built.plugins[0]))
        return StrategyBuild(plugins=[*built.plugins, probes[-1]], model=built.model)

    register_strategy("test-trgp", probed)
    result = run(RunSpec("split-digits", "test-trgp", overrides={"protocol": {"epochs": 3}}))
    probe = probes[0]
    assert probe.checked == [0, 1, 2, 3, 4]
    moved = [
        float((Q - torch.eye(len(Q))).abs().max())
        for per_layer in probe.snapshots.values()
        for scales in per_layer.values()
        for Q in scales.values()
    ]
    assert moved and max(moved) > 1e-4  # the scales did train
    regions = [task["trust_region"] for task in result["tasks"][1:]]
    assert any(any(chosen) for chosen in (r.values() for r in regions))
    assert all(len(chosen) <= 2 for r in regions for chosen in r.values())
    scales = sum(
        Q.numel() * 4
        for per_layer in probe.snapshots.values()
        for layer_scales in per_layer.values()
        for Q in layer_scales.values()
    )
    memory = probe.scaling.memory
    memory_bytes = sum(t.numel() * t.element_size() for t in memory.kept())
    assert result["tasks"][-1]["kept_bytes"] == memory_bytes + scales
    stored = sum(b.numel() * 4 for task in memory.task_bases for b in task.values())
    assert memory_bytes == stored + sum(b.numel() * 4 for b in memory.bases.values())
