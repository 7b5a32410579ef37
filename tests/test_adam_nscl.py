"""Adam-NSCL (baselines/adam_nscl.py): the null-space rule by hand, steps that lie in the null
space with the reference's scaling, and its end-to-end claim on pmnist5k."""

import math

import pytest
import torch
from fakes import fake_strategy

from baselines.adam_nscl import AdamNSCLParams, NullSpaceSteps, null_space
from clbench.models import ModelParams, build_model
from clbench.resolution import RunSpec, resolve
from clbench.runner import run
from clbench.strategies.projection import projected_layers

F64 = torch.float64


def orthonormal(d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64)).Q


def test_the_null_space_holds_eigenvalues_within_the_threshold_of_the_smallest():
    V = orthonormal(5, 0)
    G = V @ torch.diag(torch.tensor([100.0, 40.0, 5.0, 1.0, 0.5], dtype=F64)) @ V.T
    range_basis, null_basis = null_space(G, threshold=10)  # lambda <= 5
    assert (range_basis.shape[1], null_basis.shape[1]) == (2, 3)
    torch.testing.assert_close(null_basis @ null_basis.T, V[:, 2:] @ V[:, 2:].T)
    _, only_smallest = null_space(G, threshold=1)
    assert only_smallest.shape[1] == 1


def test_a_singular_covariance_keeps_every_numerically_zero_direction():
    V = orthonormal(8, 1)
    G = V[:, :3] @ torch.diag(torch.tensor([9.0, 4.0, 1.0], dtype=F64)) @ V[:, :3].T
    range_basis, null_basis = null_space(G, threshold=10)
    assert (range_basis.shape[1], null_basis.shape[1]) == (3, 5)  # not a random part of them
    with pytest.raises(ValueError, match="threshold 0.5 must be >= 1"):
        null_space(G, threshold=0.5)


@pytest.mark.parametrize("kept", [2, 4])  # null space d/2 (through U) or 3d/4 (through V)
def test_every_step_lies_in_the_null_space_scaled_by_its_frobenius_norm(kept):
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 2, 2, ModelParams())
    layers = projected_layers(model)
    plugin = NullSpaceSteps(AdamNSCLParams(svd_thres=10))
    nulls = {}
    for name, layer in layers.items():
        d = layer.weight.shape[1]
        X = torch.randn(d, d // kept, dtype=F64)  # rank d/kept: the rest is the null space
        plugin.grams[name] = X @ X.T
        nulls[name] = null_space(plugin.grams[name], 10)[1]
    strategy = fake_strategy(model, task=1)
    plugin.before_training_exp(strategy)
    before = {name: layer.weight.detach().clone() for name, layer in layers.items()}
    raw = {name: torch.randn_like(w) for name, w in before.items()}
    plugin.before_update(strategy)
    with torch.no_grad():  # what the optimizer would do
        for name, layer in layers.items():
            layer.weight.add_(raw[name])
    plugin.after_update(strategy)
    for name, layer in layers.items():
        U = nulls[name].to(torch.float32)
        step = layer.weight.detach() - before[name]
        expected = raw[name] @ U @ U.T / math.sqrt(U.shape[1])
        torch.testing.assert_close(step, expected, rtol=1e-4, atol=1e-5)
        range_basis = null_space(plugin.grams[name], 10)[0].to(torch.float32)
        assert float((step @ range_basis).abs().max()) < 1e-5  # nothing along past inputs


def test_adam_nscl_trains_with_adam_and_its_own_rate():
    protocol = resolve(RunSpec("pmnist5k", "adam-nscl", overrides={"protocol": {"lr": "0.5"}}))
    assert (protocol.protocol.optimizer, protocol.protocol.lr) == ("adam", 1e-3)
    assert resolve(RunSpec("cifar100-10", "adam-nscl")).protocol.lr == 1e-4


@pytest.mark.slow
def test_adam_nscl_forgets_far_less_than_fine_tuning_on_pmnist5k():
    """The default suite's pmnist5k settings, seed 0: BWT at least 10 points above naive's."""
    shared = {"protocol": {"epochs": "2", "batch_size": "32", "lr": "0.02"}}
    naive = run(RunSpec("pmnist5k", "naive", overrides=shared))
    ours = run(RunSpec("pmnist5k", "adam-nscl", overrides=shared))
    assert ours["metrics"]["bwt"] >= naive["metrics"]["bwt"] + 10
    ranks = ours["tasks"][1]["subspaces"]["null-space rank"]
    assert set(ranks) == {"backbone.net.1", "backbone.net.3", "heads.0"}
    assert all(0 < r < 784 for r in ranks.values())
