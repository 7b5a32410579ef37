"""GPCNS (docs/methods.md, GPCNS): its rank rule, gradient space and merge by hand, the memory's
bookkeeping across tasks, and runs on all three bases whose task-1 steps avoid the merged basis."""

import numpy as np
import pytest
import torch
from probes import probed_run

from baselines.gpcns import (
    GPCNSMemory,
    GPCNSOverGPM,
    GPCNSOverSGP,
    GPCNSOverTRGP,
    cumulative_rank,
    gpcns,
    gradient_space,
    merge,
)
from baselines.sgp import importance as sgp_importance
from baselines.trgp import TrustRegionScaling
from clbench.memory import kept_bytes
from clbench.strategies import StrategyPlugin
from clbench.strategies.projection import GradientProjection

KEEPERS = (GradientProjection, TrustRegionScaling)  # what a GPCNS run keeps between tasks
PARAMS = {"gpm": GPCNSOverGPM, "sgp": GPCNSOverSGP, "trgp": GPCNSOverTRGP}  # by base


def test_cumulative_rank_counts_prefixes_up_to_the_threshold_inclusive():
    values = torch.tensor([4.0, 3.0, 2.0, 1.0])  # cumsum 4, 7, 9, 10 of total 10
    assert cumulative_rank(values, 0.7) == 2  # 7 <= 7 counts (the reference's "<=")
    assert cumulative_rank(values, 0.69) == 1
    assert cumulative_rank(values, 1.0) == 4
    assert cumulative_rank(torch.zeros(3), 0.9) == 0
    with pytest.raises(ValueError, match="threshold"):
        cumulative_rank(values, 1.5)


def test_gradient_space_is_the_top_right_singular_vectors_of_the_stacked_gradients():
    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(12, 5, generator=gen, dtype=torch.float64) @ torch.diag(
        torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    )
    _, s, vh = np.linalg.svd(rows.numpy(), full_matrices=False)
    expected_rank = int((np.cumsum(s) <= 0.8 * s.sum()).sum())
    V = gradient_space(rows, 0.8)
    assert V.shape == (5, expected_rank) and 0 < expected_rank < 5
    # the same subspace as numpy's leading right singular vectors
    P, Q = V.numpy() @ V.numpy().T, vh[:expected_rank].T @ vh[:expected_rank]
    np.testing.assert_allclose(P, Q, atol=1e-10)


def test_gradient_space_ignores_round_off_directions_at_threshold_one():
    rows = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], dtype=torch.float64)
    assert gradient_space(rows, 1.0).shape == (3, 1)


def test_merge_spans_both_bases_and_weights_them_by_the_importance_rule():
    gen = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    V, F = Q[:, :2], torch.cat([Q[:, 1:2], Q[:, 2:4]], dim=1)  # share one direction
    B, importance = merge(V, F, 1.0, squared=False, coefficient=None)
    assert B.shape[1] == 4 and bool((importance == 1).all())
    for basis in (V, F):
        np.testing.assert_allclose((B @ (B.T @ basis)).numpy(), basis.numpy(), atol=1e-10)
    # singular values of [V | F]: sqrt(2) on the shared direction, 1 on the three others
    B, importance = merge(V, F, 1.0, squared=False, coefficient=5.0)
    s = torch.tensor([2**0.5, 1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(importance, sgp_importance(s, 5.0))
    torch.testing.assert_close(importance[1], torch.tensor(6 / (5 + 2**0.5), dtype=torch.float64))
    # plain sigma: cumsum 1.41, 2.41, 3.41, 4.41 of 4.41; squared: 2, 3, 4, 5 of 5
    assert merge(V, F, 0.78, squared=False, coefficient=5.0)[0].shape[1] == 3
    assert merge(V, F, 0.78, squared=True, coefficient=5.0)[0].shape[1] == 2
    empty = torch.zeros(6, 0, dtype=torch.float64)
    assert merge(empty, empty, 0.9, squared=False, coefficient=None)[0].shape == (6, 0)


class FixedBase:
    """A base memory whose feature basis is given (M, scale) and that counts its updates."""

    def __init__(self, M, scale=None):
        self.M, self.scale, self.updates = M, scale, []

    def update(self, task, representations):
        self.updates.append(task)

    def projector(self, name):
        return self.M, self.scale

    def kept(self):
        return ()

    def sizes(self):
        return {"layer": self.M.shape[1]}


@pytest.mark.parametrize("base", ["gpm", "sgp", "trgp"])
def test_memory_stacks_every_task_and_merges_with_the_weighted_feature_basis(base):
    gen = torch.Generator().manual_seed(2)
    M = torch.linalg.qr(torch.randn(8, 3, generator=gen, dtype=torch.float64))[0]
    scale = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    params = PARAMS[base](threshold=(0.9,), threshold_increment=0.01)
    memory = GPCNSMemory(FixedBase(M, scale), params)
    gradients = [torch.randn(4, 8, generator=gen) for _ in range(2)]
    representation = {"layer": torch.zeros(8, 5)}
    for task, g in enumerate(gradients):
        memory.finish_task({"layer": g})
        memory.update(task, representation)
    assert memory.base.updates == [0, 1]
    stacked = torch.cat(gradients)
    torch.testing.assert_close(memory.gradients["layer"], stacked)
    V = gradient_space(stacked, 0.91)  # the threshold of task 1
    coefficient = {"gpm": 5.0, "sgp": 1.5, "trgp": 4.5}[base]
    B, importance = merge(V, M * scale, 0.91, base == "trgp", coefficient)
    got_B, got_importance = memory.projector("layer")
    torch.testing.assert_close(got_importance, importance.float())
    torch.testing.assert_close(got_B @ got_B.T, (B @ B.T).float())
    assert memory.sizes() == {"layer": B.shape[1]}


class Task1Steps(StrategyPlugin):
    """During task 1: the merged basis left by task 0 and every projected gradient (before the
    optimizer); at the end of each task, the last step's gradients and the bytes the strategy's
    own plugins keep. It keeps nothing itself."""

    def __init__(self):
        super().__init__()
        self.basis, self.gradients, self.last, self.kept_after = {}, [], {}, []

    def before_training_exp(self, strategy, **kwargs):
        if self.task_index(strategy) == 1:
            memory = next(p for p in strategy.plugins if isinstance(p, GradientProjection)).memory
            self.basis = {name: memory.projector(name) for name in memory.merged}

    def before_update(self, strategy, **kwargs):
        weights = next(p for p in strategy.plugins if hasattr(p, "buffers")).weights
        self.last = {n: w.grad.detach().flatten(1).clone() for n, w in weights.items()}
        if self.task_index(strategy) == 1:
            self.gradients.append(self.last)

    def after_training_exp(self, strategy, **kwargs):
        self.kept_after.append(kept_bytes([p for p in strategy.plugins if isinstance(p, KEEPERS)]))
        if self.task_index(strategy) == 0:
            memory = next(p for p in strategy.plugins if isinstance(p, GradientProjection)).memory
            self.task0_last = self.last
            self.task0_stored = {n: g.clone() for n, g in memory.gradients.items()}


@pytest.mark.slow
@pytest.mark.parametrize("base", ["gpm", "sgp", "trgp"])
def test_gpcns_runs_on_every_base_and_task_1_steps_avoid_the_merged_basis(base):
    probe = Task1Steps()
    result = probed_run(gpcns, PARAMS[base], {}, probe)
    assert result["metrics"]["acc"] > 80
    # the memory stacked task 0's last step's gradients, and only those
    assert set(probe.task0_stored) == set(probe.task0_last)
    for name, stored in probe.task0_stored.items():
        torch.testing.assert_close(stored, probe.task0_last[name])
    # after task 0 every importance is 1: task-1 steps are orthogonal to the merged basis
    assert probe.gradients and probe.basis
    for name, (B, importance) in probe.basis.items():
        assert B.shape[1] > 0 and bool((importance == 1).all())
        for step in probe.gradients:
            g = step[name]
            assert float((g @ B).norm()) <= 1e-4 * max(float(g.norm()), 1e-12), name
    # memory: the base's, the stacked gradients and the merged basis, each counted once
    assert [task["kept_bytes"] for task in result["tasks"]] == probe.kept_after
    for task in result["tasks"]:
        subspaces = task["subspaces"]
        sizes, gradient, features = (
            subspaces["kept basis size"],
            subspaces["gradient space rank"],
            subspaces["feature basis size"],
        )
        assert set(sizes) == set(gradient) == set(features)
        assert all(0 < sizes[n] <= gradient[n] + features[n] for n in sizes)
