"""The core rules of the projection and null-space methods, each checked against a small hand
computation (or an independent computation written here), so that breaking a rule fails a test:
TRGP's trust region, candidates, gating and scaled weights; DFGP's data and weight ascents; SGP's
alpha in the basis rule and in the memory; Adam-NSCL's svd_thres, normalisation and BatchNorm
freeze; NESS's null-space adapters; the projection's BatchNorm option. tests/mutants.py breaks
these rules one at a time and runs these tests against each break."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from fakes import fake_strategy
from torch import nn

from baselines.adam_nscl import AdamNSCLParams, NullSpaceSteps
from baselines.adam_nscl import null_space as adam_nscl_null_space
from baselines.dfgp import DFGPParams, FlatnessAscent
from baselines.gpcns import GPCNSMemory, GPCNSOverGPM, GPCNSOverSGP, GPCNSOverTRGP
from baselines.gpm import GPMMemory, GPMParams
from baselines.ness import NESSParams, NESSPlugin, null_space_basis
from baselines.ness.adapters import adapter_of, add_adapter
from baselines.sgp import SGPMemory, SGPParams
from baselines.sgp import extend_basis as sgp_extend_basis
from baselines.sgp import initial_basis as sgp_initial_basis
from baselines.trgp import (
    TaskScaledWeight,
    TRGPMemory,
    TRGPParams,
    TrustRegionScaling,
    scaled_weights,
)
from baselines.trgp import extend_basis as trgp_extend_basis
from clbench.linalg import steps_below
from clbench.models import ModelParams, build_model
from clbench.models.paper import BasicBlock
from clbench.protocol import ProtocolParams
from clbench.strategies.projection import GradientProjection, projected_layers
from clbench.strategies.sam import sam_gradient

F64 = torch.float64


def unit(d: int, *columns: int, dtype=torch.float32) -> torch.Tensor:
    """The d x k matrix of the coordinate vectors e_c (c in `columns`)."""
    return torch.eye(d, dtype=dtype)[:, list(columns)]


def rotation(d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64)).Q


def same_span(A: torch.Tensor, B: torch.Tensor, atol: float = 1e-9) -> bool:
    return A.shape == B.shape and torch.allclose(A @ A.T, B @ B.T, atol=atol)


# --- TRGP: the trust region ---------------------------------------------------------------


class OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)


# G = [[4, 2, 1, 0], [0, 0, 0, 2]]: ||G||_F = 5. With S_0 = e1, S_1 = e2, S_2 = (e3, e4):
# p_0 = ||G S_0 S_0^T||_F = 4, p_1 = 2, p_2 = sqrt(1 + 4) = 2.236 (ratios 0.8, 0.4, 0.447).
G_HAND = torch.tensor([[4.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
BASES_HAND = [unit(4, 0), unit(4, 1), unit(4, 2, 3)]


def trust_region(model, task_bases, grads, task, **params):
    """TrustRegionScaling.before_training_exp at `task` with the given per-task bases and layer
    gradients (no training: the gradient pass is replaced by `grads`); the plugin."""
    p = TRGPParams(**params)
    memory = TRGPMemory(p)
    memory.task_bases = task_bases
    scaling = TrustRegionScaling(p, memory)
    scaling._layer_gradients = lambda strategy: grads
    scaling.before_training_exp(fake_strategy(model, task=task))
    return scaling


def selection(task_bases, grads, task, **params):
    return trust_region(OneLayer(), task_bases, grads, task, **params).selected["fc"]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.1, [0, 2]),  # limit 0.5: all three pass, only the 2 largest are candidates
        (0.44, [0, 2]),  # limit 2.2 < p_2 = 2.236
        (0.45, [0]),  # limit 2.25 > p_2: the threshold flips task 2 out
        (0.79, [0]),  # limit 3.95 < p_0 = 4
        (0.8, []),  # limit 4.0: p_0 = 4 is not strictly above it
    ],
)
def test_trgp_trust_region_selects_the_candidates_above_the_threshold(threshold, expected):
    bases = [{"fc": b} for b in BASES_HAND]
    assert selection(bases, {"fc": G_HAND}, 3, trust_threshold=threshold) == expected


def test_trgp_trust_region_configures_the_layer_with_the_selected_bases():
    model = OneLayer()
    bases = [{"fc": b} for b in BASES_HAND]
    scaling = trust_region(model, bases, {"fc": G_HAND}, 3, trust_threshold=0.4)
    module = scaled_weights(model)["fc"]
    assert scaling.selected == {"fc": [0, 2]} and module.selections[3] == [0, 2]
    assert torch.equal(module.basis_3_0, BASES_HAND[0])
    assert torch.equal(module.basis_3_2, BASES_HAND[2])
    assert torch.equal(module.scales["3_2"], torch.eye(2))  # scales start at I
    assert module.active == 3
    # a plain forward: the scales at I leave W as it is
    torch.testing.assert_close(model.fc.weight, model.fc.parametrizations.weight.original)


def test_trgp_candidates_are_the_largest_projections():
    bases = [{"fc": b} for b in BASES_HAND]
    # p = 4, 2, 2.236: the strongest two are tasks 0 and 2, never the weakest (1)
    assert selection(bases, {"fc": G_HAND}, 3, trust_threshold=0.0) == [0, 2]
    assert selection(bases, {"fc": G_HAND}, 3, trust_threshold=0.0, max_selected=1) == [0]
    assert selection(bases, {"fc": G_HAND}, 3, trust_threshold=0.0, max_selected=3) == [0, 1, 2]
    reordered = [{"fc": b} for b in (BASES_HAND[1], BASES_HAND[2], BASES_HAND[0])]  # 2, 2.236, 4
    assert selection(reordered, {"fc": G_HAND}, 3, trust_threshold=0.0) == [1, 2]
    scaling = TrustRegionScaling(TRGPParams(), TRGPMemory(TRGPParams()))
    assert scaling.candidates(4, {0: 1.0, 1: 3.0, 2: 0.5, 3: 2.0}) == [1, 3]


@pytest.mark.parametrize(
    ("rule", "threshold", "expected"),
    [
        ("top", 0.3, [0, 1]),  # limit 1.5 (||G|| = 5 with S_0 = e1: 4, S_1 = e2: 2)
        ("previous", 0.3, [1]),  # task 1 alone, though task 0 is stronger
        ("top", 0.5, [0]),  # limit 2.5
        ("previous", 0.5, []),  # the only candidate (p_1 = 2) is outside the region
    ],
)
def test_trgp_task_2_candidates_follow_task2_selection(rule, threshold, expected):
    bases = [{"fc": b} for b in BASES_HAND[:2]]
    chosen = selection(bases, {"fc": G_HAND}, 2, trust_threshold=threshold, task2_selection=rule)
    assert chosen == expected


def test_trgp_previous_rule_applies_at_task_2_only():
    bases = [{"fc": b} for b in BASES_HAND]
    chosen = selection(bases, {"fc": G_HAND}, 3, trust_threshold=0.1, task2_selection="previous")
    assert chosen == [0, 2]  # task 3: the largest two, as "top"
    one = [{"fc": BASES_HAND[1]}]  # task 1: only task 0 exists
    assert selection(one, {"fc": G_HAND}, 1, task2_selection="previous") == []  # p_0 = 2 < 2.5
    assert selection(one, {"fc": G_HAND}, 1, trust_threshold=0.3) == [0]


class TinyResNet(nn.Module):
    """A stem, one residual block with a shortcut convolution, and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.block = BasicBlock(4, 5, 2, False)
        self.fc = nn.Linear(5, 3, bias=False)


LAYERS = ["stem", "block.conv1", "block.conv2", "block.shortcut.0", "fc"]


def gradient_with(layer: nn.Module, strong: set[int]) -> torch.Tensor:
    """A layer gradient with 3 along e_j for every task j in `strong` and 1 along the last
    coordinate, so that with task j's basis e_j exactly the tasks in `strong` are in the trust
    region at threshold 0.5 (3 > 0.5 sqrt(9 k + 1) for k <= 2)."""
    d = layer.weight[0].numel()
    G = torch.zeros(layer.weight.shape[0], d)
    G[0, -1] = 1.0
    for j in strong:
        G[0, j] = 3.0
    return G


@pytest.mark.parametrize(
    ("strong", "per_layer", "first_layer"),
    [
        # the first layer selects nothing: no layer scales under first_layer gating
        (
            [set(), {0}, {1}, {0}, {0, 1}],
            [[], [0], [1], [0], [0, 1]],
            [[], [], [], [], []],
        ),
        # the block's conv1 selects nothing: its conv2 follows; shortcuts never scale
        (
            [{0}, set(), {1}, {1}, {1}],
            [[0], [], [1], [1], [1]],
            [[0], [], [], [], [1]],
        ),
        # everything selects: each its own selection, except the shortcut
        (
            [{1}, {0}, {0, 1}, {0}, {0}],
            [[1], [0], [0, 1], [0], [0]],
            [[1], [0], [0, 1], [], [0]],
        ),
    ],
)
def test_trgp_first_layer_gating(strong, per_layer, first_layer):
    for gating, expected in (("per_layer", per_layer), ("first_layer", first_layer)):
        model = TinyResNet()
        layers = projected_layers(model)
        assert list(layers) == LAYERS
        bases = [
            {name: unit(layer.weight[0].numel(), j) for name, layer in layers.items()}
            for j in range(2)
        ]
        grads = {n: gradient_with(layers[n], s) for n, s in zip(LAYERS, strong, strict=True)}
        scaling = trust_region(model, bases, grads, 2, gating=gating)
        assert [scaling.selected[n] for n in LAYERS] == expected, gating
        modules = scaled_weights(model)
        assert [modules[n].selections[2] for n in LAYERS] == expected, gating


def test_trgp_scaled_weight_by_hand():
    """W~ = W + sum_j W S_j (Q_j - I) S_j^T for the active task's selection."""
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    model = nn.Module()
    model.fc = layer
    module = scaled_weights(model)["fc"]
    module.configure(1, {0: unit(3, 0), 2: unit(3, 1, 2)})
    module.active = 1
    W = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert torch.equal(layer.weight, W)  # Q = I: the plain weight
    with torch.no_grad():
        module.scales["1_0"].copy_(torch.tensor([[3.0]]))
        module.scales["1_2"].copy_(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))
    # W S_0 (Q_0 - I) S_0^T = [[2, 0, 0], [8, 0, 0]];
    # W S_2 = [[2, 3], [5, 6]], (Q_2 - I) = [[1, 1], [0, 0]] -> [[0, 2, 2], [0, 5, 5]]
    torch.testing.assert_close(layer.weight, torch.tensor([[3.0, 4.0, 5.0], [12.0, 10.0, 11.0]]))
    module.active = None
    assert torch.equal(layer.weight, W)
    module.active = 0  # a task without selections computes with W
    assert torch.equal(layer.weight, W)
    # a convolution: the same rule on weight.view(out, -1)
    conv = nn.Conv2d(1, 1, (1, 2), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 2.0]]]]))
    scaled = TaskScaledWeight()
    scaled.configure(1, {0: unit(2, 1)})
    scaled.active = 1
    with torch.no_grad():
        scaled.scales["1_0"].fill_(-1.0)
    torch.testing.assert_close(scaled(conv.weight), torch.tensor([[[[1.0, -2.0]]]]))


def test_trgp_evaluates_each_trained_task_with_its_own_scales():
    model = OneLayer()
    params = TRGPParams()
    scaling = TrustRegionScaling(params, TRGPMemory(params))
    module = scaled_weights(model)["fc"]
    trained = 3  # tasks 0, 1 and 2 are trained: the clock has counted 3
    for evaluated, active in ((0, 0), (2, 2), (3, None), (4, None)):
        experience = SimpleNamespace(current_experience=evaluated)
        scaling.before_eval_exp(fake_strategy(model, task=trained, experience=experience))
        assert module.active == active, evaluated
    scaling.after_eval(fake_strategy(model, task=trained))
    assert module.active == 2  # training resumes with the last trained task's scales


def test_trgp_evaluated_during_training_keeps_the_training_tasks_scales():
    """Continual evaluation calls the template's eval while task 3 (index 3) trains: it is
    evaluated with the scales it trains, and training goes on with them."""
    model = OneLayer()
    params = TRGPParams()
    scaling = TrustRegionScaling(params, TRGPMemory(params))
    module = scaled_weights(model)["fc"]
    scaling.in_training = 3  # as its before_training_exp leaves it; the clock has counted 3
    for evaluated, active in ((1, 1), (3, 3), (4, None)):
        experience = SimpleNamespace(current_experience=evaluated)
        scaling.before_eval_exp(fake_strategy(model, task=3, experience=experience))
        assert module.active == active, evaluated
    scaling.after_eval(fake_strategy(model, task=3))
    assert module.active == 3


# TRGP's basis rule with the reference's ranking, by hand: energies along q1..q5 of
# 5, 1, 6, 3, 2 (q1, q2 in span(M)); at threshold 0.8 the ranked selection is q3 (new, the
# residual's first), q1 (old), q4 (new); with `reference` ranking q3 stays in S_t but not in M.
EXTEND_ENERGIES = [5.0, 1.0, 6.0, 3.0, 2.0]
Q8 = rotation(8, 0)


def data_along(columns: list[int], energies: list[float], n: int = 30) -> torch.Tensor:
    V = torch.linalg.qr(
        torch.randn(n, len(columns), generator=torch.Generator().manual_seed(1), dtype=F64)
    ).Q
    return (Q8[:, columns] * torch.tensor(energies, dtype=F64).sqrt()) @ V.T


@pytest.mark.parametrize("ranking", ["inclusive", "reference"])
def test_trgp_memory_ranking_by_hand(ranking):
    R = data_along([0, 1, 2, 3, 4], EXTEND_ENERGIES)
    params = TRGPParams(threshold=(0.8,), threshold_increment=0.0, ranking=ranking)
    memory = TRGPMemory(params)
    memory.bases["a"] = Q8[:, :2]
    memory.update(1, {"a": R})
    S_t, M = memory.task_bases[-1]["a"], memory.bases["a"]
    for j, col in enumerate([2, 0, 3]):
        assert math.isclose(abs(float(S_t[:, j] @ Q8[:, col])), 1.0, rel_tol=1e-10)
    new = [2, 3] if ranking == "inclusive" else [3]
    assert torch.equal(M[:, :2], Q8[:, :2])
    assert same_span(M[:, 2:], Q8[:, new])
    skipped = trgp_extend_basis(R, Q8[:, :2], 0.8, skip_first_new=True)[1]
    assert same_span(skipped[:, 2:], Q8[:, [3]])
    # the strongest new direction is excluded only where it is among the chosen ones
    _, M_low = trgp_extend_basis(R, Q8[:, :2], 0.3, skip_first_new=True)
    assert M_low.shape == (8, 2)


def test_steps_below_counts_strictly_below_the_target():
    ones = torch.ones(4, dtype=F64)
    assert steps_below(torch.tensor(0.0, dtype=F64), ones, 2.0) == 2  # 0, 1 < 2; 2 is not
    assert steps_below(torch.tensor(0.5, dtype=F64), ones, 2.0) == 2  # 0.5, 1.5
    assert steps_below(torch.tensor(0.0, dtype=F64), ones, 10.0) == 4  # at most all of them
    assert steps_below(torch.tensor(3.0, dtype=F64), ones, 2.0) == 0
    values = torch.tensor([8.0, 4.0, 2.0, 2.0], dtype=F64)
    assert steps_below(torch.tensor(0.0, dtype=F64), values, 12.0) == 2  # 0, 8 < 12; 12 is not


# --- DFGP: the data and weight ascents ------------------------------------------------------


def mixed_loss(model, x, y, t, lam, perm):
    """docs/methods.md, DFGP step 2: m CE(f(x_mix), y) + (1 - m) CE(f(x_mix), y_pi), with
    x_mix = (1 - lambda) x + lambda x_pi and m = mean(lambda) a constant."""
    w = lam.view(-1, 1, 1, 1)
    out = model((1 - w) * x + w * x[perm], t)
    m = lam.detach().mean()
    return m * F.cross_entropy(out, y) + (1 - m) * F.cross_entropy(out, y[perm])


LAM0 = torch.tensor([0.02, 0.5, 0.97, 0.3], dtype=F64)
PERM = torch.tensor([2, 0, 3, 1])


def dfgp_batch() -> SimpleNamespace:
    """A seeded float64 MLP and a batch of four, as the strategy DFGP's plugin reads."""
    torch.manual_seed(0)
    model = build_model("mlp", (1, 2, 2), 1, 3, ModelParams()).double()
    x = torch.randn(4, 1, 2, 2, dtype=F64)
    y, t = torch.tensor([0, 1, 2, 1]), torch.zeros(4, dtype=torch.long)
    return SimpleNamespace(model=model, mb_x=x, mb_y=y, mb_task_id=t, device=torch.device("cpu"))


def dfgp_first_pass(mixup_weight, rho, data_step):
    """A float64 MLP after DFGP's first backward (the loss written out here) with lambda = LAM0
    and pi = PERM: (strategy, ascent)."""
    strategy = dfgp_batch()
    model, x, y, t = strategy.model, strategy.mb_x, strategy.mb_y, strategy.mb_task_id
    params = DFGPParams(mixup_weight=mixup_weight, rho=rho, data_step=data_step)
    ascent = FlatnessAscent(params)
    ascent.perm = PERM
    ascent.lam = LAM0.clone().requires_grad_(True)
    strategy.loss = F.cross_entropy(model(x, t), y) + mixup_weight * mixed_loss(
        model, x, y, t, ascent.lam, PERM
    )
    strategy.loss.backward()
    return strategy, ascent


def adversarial_lambda(model, strategy, mixup_weight, data_step):
    """lambda + data_step g / ||g||, clamped to [0, 1], with g the gradient of the loss in lambda
    (through x_mix only), computed here from `mixed_loss`; also the unclamped value."""
    lam = LAM0.clone().requires_grad_(True)
    loss = mixup_weight * mixed_loss(
        model, strategy.mb_x, strategy.mb_y, strategy.mb_task_id, lam, PERM
    )
    (g,) = torch.autograd.grad(loss, lam)
    unclamped = LAM0 + data_step * g / g.norm()
    return unclamped.clamp(0, 1), unclamped


def test_dfgp_mixed_loss_and_total_loss_by_hand():
    strategy = dfgp_batch()
    model, x, y, t = strategy.model, strategy.mb_x, strategy.mb_y, strategy.mb_task_id
    ascent = FlatnessAscent(DFGPParams(mixup_weight=0.3))
    ascent.perm = PERM
    torch.testing.assert_close(
        ascent._mixed_loss(strategy, LAM0), mixed_loss(model, x, y, t, LAM0, PERM)
    )
    clean = F.cross_entropy(model(x, t), y)
    strategy.loss = clean
    ascent.before_backward(strategy)
    assert ascent.lam.requires_grad and bool(((ascent.lam >= 0) & (ascent.lam <= 1)).all())
    assert sorted(ascent.perm.tolist()) == [0, 1, 2, 3]
    expected = clean + 0.3 * mixed_loss(model, x, y, t, ascent.lam.detach(), ascent.perm)
    torch.testing.assert_close(strategy.loss, expected)


def capture_lambdas(ascent):
    seen = []
    original = ascent._mixed_loss

    def recording(strategy, lam):
        seen.append(lam.detach().clone())
        return original(strategy, lam)

    ascent._mixed_loss = recording
    return seen


@pytest.mark.parametrize("data_step", [0.3, 1.0])
def test_dfgp_data_ascent_moves_lambda_along_its_normalised_gradient(data_step):
    w = 0.7
    strategy, ascent = dfgp_first_pass(w, rho=0.05, data_step=data_step)
    expected, unclamped = adversarial_lambda(strategy.model, strategy, w, data_step)
    seen = capture_lambdas(ascent)
    ascent.after_backward(strategy)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(expected, LAM0)  # it did move
    if data_step == 1.0:  # the clamp matters here
        assert bool(((unclamped < 0) | (unclamped > 1)).any())
        assert bool(((expected > 0) & (expected < 1)).any())


def test_dfgp_data_step_zero_leaves_lambda():
    strategy, ascent = dfgp_first_pass(0.7, rho=0.05, data_step=0.0)
    seen = capture_lambdas(ascent)
    ascent.after_backward(strategy)
    assert len(seen) == 1 and torch.equal(seen[0], LAM0)


@pytest.mark.parametrize("rho", [0.0, 0.05, 0.5])  # rho = 0: the data ascent's pass alone
def test_dfgp_weight_ascent_is_the_gradient_at_the_perturbed_weights(rho):
    w, data_step = 0.7, 0.3
    strategy, ascent = dfgp_first_pass(w, rho=rho, data_step=data_step)
    model = strategy.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = {n: p.grad.clone() for n, p in model.named_parameters()}
    lam_adv, _ = adversarial_lambda(model, strategy, w, data_step)
    # independently: a copy at w + rho g / ||g||, g the first gradient over every parameter
    norm = torch.sqrt(sum(g.square().sum() for g in first.values()))
    twin = copy.deepcopy(model)
    twin.zero_grad()
    with torch.no_grad():
        for n, p in twin.named_parameters():
            p.copy_(before[n] + rho * first[n] / norm)
    x, y, t = strategy.mb_x, strategy.mb_y, strategy.mb_task_id
    loss = F.cross_entropy(twin(x, t), y) + w * mixed_loss(twin, x, y, t, lam_adv, PERM)
    loss.backward()
    ascent.after_backward(strategy)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, dict(twin.named_parameters())[n].grad, msg=n)
        assert not torch.allclose(p.grad, first[n]), n
        assert torch.equal(p.detach(), before[n]), n  # restored bit for bit


def test_dfgp_rho_and_data_step_zero_leave_the_first_gradient():
    strategy, ascent = dfgp_first_pass(0.7, rho=0.0, data_step=0.0)
    first = [p.grad.clone() for p in strategy.model.parameters()]
    ascent.after_backward(strategy)
    for p, g in zip(strategy.model.parameters(), first, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)


def test_sam_with_rho_zero_keeps_the_gradient():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))

    def loss():
        return 0.5 * (torch.tensor([1.0, 2.0]) * model.weight.square()).sum()

    loss().backward()  # (3, 8)
    sam_gradient(model, 0.0, loss)
    assert torch.equal(model.weight.grad, torch.tensor([[3.0, 8.0]]))
    assert torch.equal(model.weight.detach(), torch.tensor([[3.0, 4.0]]))


# --- GPCNS: the importance coefficient and the merge rule -----------------------------------


class FixedBase:
    """A base memory with a given feature basis M diag(scale)."""

    def __init__(self, M, scale):
        self.M, self.scale = M, scale

    def update(self, task, representations):
        pass

    def projector(self, name):
        return self.M, self.scale

    def kept(self):
        return ()

    def sizes(self):
        return {}


@pytest.mark.parametrize(
    ("coefficient", "c"),
    [(2.0, 2.0), (None, 1.5)],  # None: the reference's for sgp
)
def test_gpcns_memory_by_hand(coefficient, c):
    """Feature basis e1, e2 with SGP scales 1, 0.5; final gradients 2 e1 (task 0) and 3 e3
    (task 1). Task 0: [V | F] = [e1 | e1, 0.5 e2] has sigma sqrt(2), 0.5: all importances 1.
    Task 1: V = (e3, e1) from the stacked rows; [e3, e1 | e1, 0.5 e2] has sigma sqrt(2) (e1),
    1 (e3), 0.5 (e2), importance (c + 1) sigma / (c sigma + sqrt(2))."""
    e = torch.eye(6, dtype=F64)
    params = GPCNSOverSGP(threshold=(1.0,), threshold_increment=0.0, coefficient=coefficient)
    memory = GPCNSMemory(FixedBase(e[:, :2], torch.tensor([1.0, 0.5], dtype=F64)), params)
    representation = {"layer": torch.zeros(6, 3, dtype=F64)}
    memory.finish_task({"layer": 2 * e[:1]})
    memory.update(0, representation)
    B, importance = memory.projector("layer")
    assert torch.equal(importance, torch.ones(2, dtype=F64))
    assert same_span(B, e[:, :2])
    memory.finish_task({"layer": 3 * e[2:3]})
    memory.update(1, representation)
    assert torch.equal(memory.gradients["layer"], torch.stack([2 * e[0], 3 * e[2]]).float())
    B, importance = memory.projector("layer")
    sigma = torch.tensor([2**0.5, 1.0, 0.5], dtype=F64)
    torch.testing.assert_close(importance, (c + 1) * sigma / (c * sigma + 2**0.5))
    assert same_span(B, e[:, [0, 2, 1]])
    assert all(abs(float(B[:, k] @ e[:, j])) > 1 - 1e-9 for k, j in enumerate([0, 2, 1]))


def test_gpcns_merge_energy_rule():
    assert [GPCNSOverTRGP().merge_squared(t) for t in (0, 1, 2)] == [False, True, True]
    assert not GPCNSOverGPM().merge_squared(1)
    assert not GPCNSOverSGP().merge_squared(1)
    assert GPCNSOverGPM(merge_energy="squared").merge_squared(0)
    assert not GPCNSOverTRGP(merge_energy="sigma").merge_squared(1)


# --- SGP: alpha ---------------------------------------------------------------------------


def f(values: list[float], alpha: float) -> list[float]:
    """SGP's importance with one shared max, written out."""
    top = max(values)
    return [(alpha + 1) * v / (alpha * v + top) for v in values]


def test_sgp_extend_basis_with_alpha_3_by_hand():
    R = data_along([0, 1, 2, 3, 4], EXTEND_ENERGIES)
    M = Q8[:, :2]
    previous = torch.tensor([0.5, 0.1], dtype=F64)
    M_new, lam = sgp_extend_basis(R, M, previous, 0.8, alpha=3.0)
    # old strengths sqrt(5), 1; new by GPM's rule at 0.8: sqrt(6), sqrt(3); shared max sqrt(6)
    values = f([math.sqrt(5), 1.0, math.sqrt(6), math.sqrt(3)], 3.0)
    expected = [min(values[0] + 0.5, 1.0), values[1] + 0.1, values[2], values[3]]
    assert values[0] + 0.5 > 1 and values[1] + 0.1 < 1  # one clipped, one not
    torch.testing.assert_close(lam, torch.tensor(expected, dtype=F64), rtol=1e-12, atol=0)
    assert same_span(M_new[:, 2:], Q8[:, [2, 3]])
    _, lam_initial = sgp_initial_basis(R, 0.5, alpha=3.0)  # energy 6/17 < 0.5, 11/17 not
    torch.testing.assert_close(lam_initial, torch.tensor([1.0], dtype=F64))
    _, lam_initial = sgp_initial_basis(R, 0.9, alpha=3.0)  # 6, 5, 3 of 17 (14 / 17 < 0.9)
    expected_initial = f([math.sqrt(6), math.sqrt(5), math.sqrt(3)], 3.0)
    torch.testing.assert_close(lam_initial, torch.tensor(expected_initial, dtype=F64))


def test_sgp_memory_uses_its_alpha_and_projects_with_the_importances():
    """Task 0: singular values 10, 1, 0.1 along e1, e2, e3 (threshold 0.99995: energies
    100 / 101.01 and 101 / 101.01 are below it): e1, e2 with importances f(10) = 1,
    f(1) = 4 / 13 at alpha = 3. Task 1: strengths 0 (e1) and 0.1 (e2), and a new
    direction e3 with singular value 2: f(0, 0.1, 2) = 0, 0.4 / 2.3, 1; the old entries add the
    previous ones: 1, 4 / 13 + 0.4 / 2.3."""
    params = SGPParams(alpha=3.0, threshold=(0.99995,), threshold_increment=0.0)
    memory = SGPMemory(params)
    memory.update(0, {"a": torch.diag(torch.tensor([10.0, 1.0, 0.1, 0.0], dtype=F64))})
    torch.testing.assert_close(memory.importance["a"], torch.tensor([1.0, 4 / 13], dtype=F64))
    assert same_span(memory.bases["a"], unit(4, 0, 1, dtype=F64))
    memory.update(1, {"a": torch.diag(torch.tensor([0.0, 0.1, 2.0, 0.0], dtype=F64))})
    expected = torch.tensor([1.0, 4 / 13 + 0.4 / 2.3, 1.0], dtype=F64)
    torch.testing.assert_close(memory.importance["a"], expected)
    assert same_span(memory.bases["a"][:, 2:], unit(4, 2, dtype=F64))
    basis, scale = memory.projector("a")
    assert basis is memory.bases["a"] and torch.equal(scale, expected)
    # the projection keeps 1 - lambda of each basis component (here of e2: 1 - 0.4816)
    projection = GradientProjection(memory, params)
    model = nn.Module()
    model.a = nn.Linear(4, 1, bias=False).double()
    model.a.weight.grad = torch.ones(1, 4, dtype=F64)
    projection.after_backward(fake_strategy(model, task=1))
    kept = 1 - expected[1]
    torch.testing.assert_close(
        model.a.weight.grad.abs(), torch.tensor([[0.0, float(kept), 0.0, 1.0]], dtype=F64)
    )


# --- Adam-NSCL: svd_thres -------------------------------------------------------------------

EIGENVALUES = torch.tensor([100.0, 9.0, 3.0, 1.0], dtype=F64)


@pytest.mark.parametrize(("svd_thres", "null"), [(2.0, 1), (3.5, 2), (10.0, 3), (200.0, 4)])
def test_adam_nscl_null_space_holds_eigenvalues_within_svd_thres_of_the_smallest(svd_thres, null):
    V = rotation(4, 3)
    G = (V * EIGENVALUES) @ V.T
    range_basis, null_basis = adam_nscl_null_space(G, svd_thres)
    assert (range_basis.shape[1], null_basis.shape[1]) == (4 - null, null)
    assert same_span(null_basis, V[:, 4 - null :])
    assert same_span(range_basis, V[:, : 4 - null])


def test_adam_nscl_null_space_includes_an_eigenvalue_exactly_at_the_limit():
    # diag(100, 9, 4, 1) up to a permutation: exact eigenvalues; 4 <= 4 * 1 is in
    G = torch.diag(torch.tensor([9.0, 1.0, 100.0, 4.0], dtype=F64))
    _, null_basis = adam_nscl_null_space(G, 4.0)
    assert same_span(null_basis, unit(4, 1, 3, dtype=F64))


def adam_nscl_plugin(model, grams, **params):
    """The plugin at the start of task 1 with the covariances `grams` of task 0."""
    plugin = NullSpaceSteps(AdamNSCLParams(**params))
    plugin.grams = grams
    plugin.before_training_exp(fake_strategy(model, task=1))
    return plugin


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("svd_thres", "null"), [(3.5, 2), (10.0, 3)])
def test_adam_nscl_steps_use_the_params_svd_thres(svd_thres, null, normalize):
    """A 4-input layer whose Gram matrix has eigenvalues 100, 9, 3, 1: the plugin's null space
    has `null` dimensions and each step is step U U^T (/ sqrt(null) when normalised)."""
    model = nn.Module()
    model.fc = nn.Linear(4, 3, bias=False).double()
    V = rotation(4, 4)
    plugin = adam_nscl_plugin(
        model, {"fc": (V * EIGENVALUES) @ V.T}, svd_thres=svd_thres, normalize=normalize
    )
    assert plugin.null_ranks == {"fc": null}
    before = model.fc.weight.detach().clone()
    raw = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=F64)
    strategy = fake_strategy(model, task=1)
    plugin.before_update(strategy)
    with torch.no_grad():
        model.fc.weight.add_(raw)
    plugin.after_update(strategy)
    U = V[:, 4 - null :]
    expected = raw @ U @ U.T / (math.sqrt(null) if normalize else 1.0)
    torch.testing.assert_close(model.fc.weight.detach() - before, expected)


@pytest.mark.parametrize("batchnorm", ["freeze", "train"])
def test_adam_nscl_freezes_batchnorm_after_task_0(batchnorm):
    torch.manual_seed(0)
    model = build_model("small-cnn", (1, 8, 8), 2, 2, ModelParams())
    layers = projected_layers(model)
    grams = {n: torch.eye(m.weight[0].numel(), dtype=F64) for n, m in layers.items()}
    plugin = adam_nscl_plugin(model, grams, batchnorm=batchnorm)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    plugin.before_update(fake_strategy(model, task=1))
    for name, p in model.named_parameters():
        frozen = batchnorm == "freeze" and name.startswith("backbone.bn")
        assert (p.grad is None) == frozen, name


def test_adam_nscl_sums_the_covariances_of_every_task(monkeypatch):
    grams = iter([{"fc": torch.eye(2, dtype=F64)}, {"fc": 2 * torch.eye(2, dtype=F64)}])
    monkeypatch.setattr("baselines.adam_nscl.layer_grams", lambda *args: next(grams))
    plugin = NullSpaceSteps(AdamNSCLParams())
    model = nn.Module()
    model.fc = nn.Linear(2, 2, bias=False)
    for task in range(2):
        strategy = fake_strategy(
            model, task=task, experience=SimpleNamespace(dataset=None), train_mb_size=4
        )
        plugin.after_training_exp(strategy)
    assert torch.equal(plugin.grams["fc"], 3 * torch.eye(2, dtype=F64))


# --- NESS: the null-space adapters ----------------------------------------------------------


def test_ness_null_space_with_no_data_is_everything_and_eps1_counts():
    basis, complement, stats = null_space_basis(torch.zeros(3, 3, dtype=F64), 0.001)
    assert stats["rank"] == 3 and basis.shape == (3, 3) and complement.shape == (3, 0)
    V = rotation(4, 6)
    G = (V * torch.tensor([100.0, 1.0, 1e-6, 0.0], dtype=F64)) @ V.T  # sigma 10, 1, 1e-3, 0
    for eps1, r in ((1e-6, 1), (1e-4, 2), (0.1, 3)):  # eps_tol 1.1e-5, 0.0011, 1.1
        basis, complement, _ = null_space_basis(G, eps1)
        assert same_span(basis, V[:, 4 - r :]), eps1
        assert same_span(complement, V[:, : 4 - r]), eps1


@pytest.mark.parametrize("task", [1, 2])
def test_ness_plugin_adapts_each_layer_with_its_null_space(task):
    """First layer (d = 4): sigma 10, 1, 1e-3, 0, eps1 = 1e-3 (eps_tol 0.011): a rank-2 adapter
    on the two smallest eigenvectors; second layer (d = 100): identity Gram, no adapter. Only A
    and the current task's head train."""
    torch.manual_seed(0)
    model = build_model("mlp", (1, 2, 2), 3, 2, ModelParams())
    V = rotation(4, 7)
    plugin = NESSPlugin(NESSParams(eps1=1e-3, source="gram", route="factored"))
    plugin.grams = {
        "backbone.net.1": (V * torch.tensor([100.0, 1.0, 1e-6, 0.0], dtype=F64)) @ V.T,
        "backbone.net.3": torch.eye(100, dtype=F64),
    }
    first, second = model.backbone.net[1], model.backbone.net[3]
    if task == 2:  # the previous task's adapters are merged into W first
        for layer in (first, second):
            d = layer.weight.shape[1]
            with torch.no_grad():
                add_adapter(layer, unit(d, 0, 1)).A.normal_()
        W_second = second.weight.detach().clone()
    W = first.weight.detach().clone()
    plugin.before_training_exp(
        fake_strategy(model, task=task, train_mb_size=16, protocol=ProtocolParams())
    )
    if task == 2:
        assert adapter_of(second) is None and type(second) is nn.Linear
        torch.testing.assert_close(second.weight, W_second)
        torch.testing.assert_close(first.parametrizations.weight.original, W)
    update = adapter_of(first)
    assert update is not None and adapter_of(model.backbone.net[3]) is None
    assert same_span(update.basis.double(), V[:, 2:], atol=1e-6)
    assert torch.equal(update.A, torch.zeros(100, 2))
    torch.testing.assert_close(first.weight, W)  # A = 0 at the start
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"heads.{task}.weight", "backbone.net.1.parametrizations.weight.0.A"}
    assert plugin.spectra["backbone.net.1"]["rank"] == 2
    with torch.no_grad():
        update.A.copy_(torch.ones(100, 2))
    torch.testing.assert_close(first.weight, W + torch.ones(100, 2) @ update.basis.T)


def test_ness_gram_source_sums_every_task():
    grams = iter([{"fc": torch.eye(4, dtype=F64)}, {"fc": 3 * torch.eye(4, dtype=F64)}])
    plugin = NESSPlugin(NESSParams(source="gram"))
    plugin._accumulate = lambda strategy, datasets: next(grams)
    model, data = OneLayer(), SimpleNamespace(dataset="data")
    for task in range(2):
        plugin.after_training_exp(fake_strategy(model, task=task, experience=data))
    assert torch.equal(plugin.grams["fc"], 4 * torch.eye(4, dtype=F64))
    raw = NESSPlugin(NESSParams(source="raw"))
    raw.after_training_exp(fake_strategy(model, task=0, experience=data))
    assert raw.past_data == ["data"] and raw.grams == {}


def test_ness_sam_perturbs_task_0_only():
    def plugin_at(task, optimizer):
        torch.manual_seed(0)
        model = build_model("mlp", (1, 2, 2), 1, 2, ModelParams())
        x, y = torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 1, 0])
        t = torch.zeros(4, dtype=torch.long)
        strategy = fake_strategy(
            model,
            task=task,
            mb_x=x,
            mb_y=y,
            mb_task_id=t,
            _criterion=F.cross_entropy,
            protocol=ProtocolParams(),
            train_mb_size=4,
        )
        F.cross_entropy(model(x, t), y).backward()
        first = [p.grad.clone() for p in model.parameters()]
        plugin = NESSPlugin(NESSParams(optimizer=optimizer, rho=0.5, source="gram"))
        plugin.grams = {  # full-rank statistics of task 0: no adapter from task 1 on
            name: torch.eye(layer.weight[0].numel(), dtype=F64)
            for name, layer in projected_layers(model).items()
        }
        plugin.before_training_exp(strategy)
        plugin.after_backward(strategy)
        return [torch.equal(p.grad, g) for p, g in zip(model.parameters(), first, strict=True)]

    assert not any(plugin_at(0, "sam"))
    assert all(plugin_at(1, "sam")) and all(plugin_at(0, "sgdm"))


# --- the projection's BatchNorm option ------------------------------------------------------


@pytest.mark.parametrize("batchnorm", ["freeze", "train"])
def test_projection_zeroes_batchnorm_gradients_only_when_frozen(batchnorm):
    torch.manual_seed(0)
    model = build_model("small-cnn", (1, 8, 8), 2, 2, ModelParams())
    params = GPMParams(layer_caps=(), batchnorm=batchnorm)
    plugin = GradientProjection(GPMMemory(params), params)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    plugin.after_backward(fake_strategy(model, task=1))
    for name, p in model.named_parameters():
        zero = batchnorm == "freeze" and name.startswith("backbone.bn")
        assert bool((p.grad == 0).all()) == zero and bool((p.grad == 1).all()) != zero, name
