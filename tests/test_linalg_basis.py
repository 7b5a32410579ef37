"""Known-answer tests of the basis rules (docs/methods.md): GPM's, SGP's, TRGP's and NESS's, beside
their methods in baselines/, and the shared helpers of clbench.linalg.basis they use."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines import gpm, sgp, trgp
from baselines.ness import NESSParams, null_space_basis
from clbench.errors import ConfigError
from clbench.linalg.basis import Projection, energy_rank
from clbench.linalg.decompose import gram_matrix, principal_angles

F64 = torch.float64
D = 8


def orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=F64)).Q


Q = orthonormal(D, D, seed=0)  # q_1 .. q_8: the coordinate system of the hand examples


def data_along(columns: list[int], energies: list[float], n: int = 30) -> torch.Tensor:
    """R = sum_j sqrt(e_j) q_{c_j} v_j^T with orthonormal v_j: R has energy e_j along q_{c_j}."""
    V = orthonormal(n, len(columns), seed=1)
    amplitudes = torch.tensor(energies, dtype=F64).sqrt()
    return (Q[:, columns] * amplitudes) @ V.T


def same_span(A: torch.Tensor, B: torch.Tensor) -> bool:
    if A.shape != B.shape:
        return False
    return A.shape[1] == 0 or float(principal_angles(A, B).max()) < 1e-9


def orthonormal_columns(A: torch.Tensor) -> bool:
    return torch.allclose(A.T @ A, torch.eye(A.shape[1], dtype=F64), atol=1e-10)


def project_out(grad: torch.Tensor, M: torch.Tensor, scale: torch.Tensor | None = None):
    """grad - grad M diag(scale) M^T through the shared `Projection`, for a gradient (out, d)."""
    return Projection.of(M, scale, like=grad)(grad)


# --- GPM --------------------------------------------------------------------------------


def test_energy_rank_is_strict_without_plus_one() -> None:
    s = torch.tensor([4.0, 3.0, 2.0, 1.0, 1.0])  # cumsum(s^2) / total = 16, 25, 29, 30, 31 / 31
    assert energy_rank(s, 25 / 31) == 1  # 25/31 itself is not < 25/31
    assert energy_rank(s, 0.9) == 2
    assert energy_rank(s, 0.5) == 0
    assert energy_rank(s, 1.0) == 4
    assert energy_rank(torch.zeros(3), 0.9) == 0


def test_gpm_initial_basis_keeps_the_hand_computed_directions() -> None:
    R = data_along([0, 1, 2, 3, 4], [8.0, 4.0, 2.0, 1.0, 1.0])
    M = gpm.initial_basis(R, 0.9)
    assert same_span(M, Q[:, :3])
    assert orthonormal_columns(M)
    assert gpm.initial_basis(R, 0.5).shape == (D, 0)


# energies along q1..q5; q1, q2 lie in span(M) = span(q1, q2); total = 17
EXTEND_ENERGIES = [5.0, 1.0, 6.0, 3.0, 2.0]


@pytest.mark.parametrize(
    ("threshold", "new_columns"),
    [
        (0.3, []),  # acc = 6/17 = 0.353 >= 0.3: nothing added
        (0.6, [2]),  # 6/17 -> +6/17 = 0.706
        (0.8, [2, 3]),  # -> +3/17 = 0.882
        (0.95, [2, 3, 4]),  # -> +2/17 = 1
    ],
)
def test_gpm_extend_basis_hand_arithmetic(threshold: float, new_columns: list[int]) -> None:
    R = data_along([0, 1, 2, 3, 4], EXTEND_ENERGIES)
    M = Q[:, :2]
    M_new, added = gpm.extend_basis(R, M, threshold)
    assert added == len(new_columns)
    assert torch.equal(M_new[:, :2], M)
    assert orthonormal_columns(M_new)
    assert same_span(M_new[:, 2:], Q[:, new_columns])


def test_gpm_extend_basis_residual_exactly_zero_and_zero_data() -> None:
    M = Q[:, :3]
    R = M @ torch.randn(3, 20, dtype=F64)  # lies entirely in span(M)
    M_new, added = gpm.extend_basis(R, M, 0.999)
    assert added == 0 and torch.equal(M_new, M)
    M_new, added = gpm.extend_basis(torch.zeros(D, 5), M, 0.97)
    assert added == 0 and torch.equal(M_new, M)
    # threshold 1 adds q4 and then must not add null directions of the residual (round-off
    # can leave acc just below 1; those directions are arbitrary and may lie in span(M))
    R = data_along([0, 3], [0.2, 0.9])  # without the guard this adds a vector inside span(M)
    M_new, added = gpm.extend_basis(R, M, 1.0)
    assert added == 1 and same_span(M_new[:, 3:], Q[:, 3:4]) and orthonormal_columns(M_new)


def test_gpm_extend_basis_can_fill_the_whole_space() -> None:
    R = torch.randn(D, 50, generator=torch.Generator().manual_seed(2), dtype=F64)
    M_new, added = gpm.extend_basis(R, Q[:, :7], 1.0)
    assert added == 1 and M_new.shape == (D, D) and orthonormal_columns(M_new)


def test_gpm_extend_basis_random_data_is_orthogonal_to_old_basis() -> None:
    gen = torch.Generator().manual_seed(3)
    d = 40
    M = orthonormal(d, 10, seed=4)
    R = torch.randn(d, 6, generator=gen, dtype=F64) @ torch.randn(6, 200, generator=gen).double()
    R += 0.1 * torch.randn(d, 200, generator=gen, dtype=F64)
    M_new, added = gpm.extend_basis(R, M, 0.97)
    assert 0 < added < 30
    assert orthonormal_columns(M_new)
    assert torch.allclose(M.T @ M_new[:, 10:], torch.zeros(10, added, dtype=F64), atol=1e-10)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_thresholds_outside_unit_interval_are_rejected(threshold: float) -> None:
    R = torch.ones(D, 4)
    with pytest.raises(ValueError, match="threshold"):
        gpm.initial_basis(R, threshold)
    with pytest.raises(ValueError, match="threshold"):
        gpm.extend_basis(R, Q[:, :1], threshold)


def test_basis_with_wrong_rows_is_rejected() -> None:
    with pytest.raises(ValueError, match="M must be a 8 x k basis"):
        gpm.extend_basis(torch.ones(D, 4), torch.ones(5, 2), 0.9)


# --- SGP --------------------------------------------------------------------------------


def test_sgp_importance_hand_values() -> None:
    x = torch.tensor([4.0, 2.0, 0.0])
    assert torch.allclose(sgp.importance(x, 10), torch.tensor([1.0, 22 / 24, 0.0], dtype=F64))
    assert torch.allclose(sgp.importance(x, 0), x.double() / 4)  # alpha = 0: x / max(x)
    assert torch.equal(sgp.importance(torch.zeros(2), 10), torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError, match="non-negative"):
        sgp.importance(torch.tensor([1.0, -1.0]), 10)
    with pytest.raises(ValueError, match="alpha"):
        sgp.importance(x, -1)


def f(x: list[float], alpha: float = 10) -> list[float]:
    """SGP's f with one shared max, written out for the hand examples."""
    top = max(x)
    return [(alpha + 1) * v / (alpha * v + top) for v in x]


def test_sgp_initial_basis_is_the_gpm_basis_with_scaled_importance() -> None:
    energies = [8.0, 4.0, 2.0, 1.0, 1.0]
    R = data_along([0, 1, 2, 3, 4], energies)
    M, lam = sgp.initial_basis(R, 0.9, alpha=10)
    assert torch.equal(M, gpm.initial_basis(R, 0.9))
    expected = f([math.sqrt(e) for e in energies[:3]])
    assert torch.allclose(lam, torch.tensor(expected, dtype=F64), rtol=1e-12)


def test_sgp_extend_basis_hand_arithmetic() -> None:
    R = data_along([0, 1, 2, 3, 4], EXTEND_ENERGIES)
    M = Q[:, :2]
    previous = torch.tensor([0.5, 0.2], dtype=F64)
    M_new, lam = sgp.extend_basis(R, M, previous, 0.8, alpha=10)
    # old strengths ||R^T q1|| = sqrt(5), ||R^T q2|| = 1; new by GPM's rule: sqrt(6), sqrt(3)
    values = f([math.sqrt(5), 1.0, math.sqrt(6), math.sqrt(3)])
    expected = [min(values[0] + 0.5, 1.0), min(values[1] + 0.2, 1.0), values[2], values[3]]
    assert torch.allclose(lam, torch.tensor(expected, dtype=F64), rtol=1e-12)
    assert torch.equal(M_new, gpm.extend_basis(R, M, 0.8)[0])
    # nothing new (r = 0): only the old importances are updated, with their own max
    M_same, lam_same = sgp.extend_basis(R, M, previous, 0.3, alpha=10)
    assert torch.equal(M_same, M)
    old = f([math.sqrt(5), 1.0])
    expected_old = [min(old[0] + 0.5, 1.0), min(old[1] + 0.2, 1.0)]
    assert torch.allclose(lam_same, torch.tensor(expected_old, dtype=F64))


def test_sgp_extend_matches_an_independent_numpy_version_of_the_rule() -> None:
    gen = torch.Generator().manual_seed(5)
    d, n, alpha, eps = 30, 120, 10.0, 0.95
    M = orthonormal(d, 6, seed=6)
    R = torch.randn(d, 8, generator=gen, dtype=F64) @ torch.randn(8, n, generator=gen).double()
    R += 0.05 * torch.randn(d, n, generator=gen, dtype=F64)
    previous = torch.linspace(0.1, 0.9, 6, dtype=F64)
    M_new, lam = sgp.extend_basis(R, M, previous, eps, alpha)

    # docs/methods.md's SGP step with numpy float64 SVDs, strengths through the SVD of M M^T R
    Rn, Mn = R.numpy(), M.numpy()
    total = (Rn**2).sum()
    Uc, sc, _ = np.linalg.svd(Mn @ Mn.T @ Rn, full_matrices=False)
    k = Mn.shape[1]
    strengths = np.sqrt(((Mn.T @ Uc[:, :k]) ** 2) @ sc[:k] ** 2)
    Uh, sh, _ = np.linalg.svd(Rn - Mn @ Mn.T @ Rn, full_matrices=False)
    acc, r = (total - (sh**2).sum()) / total, 0
    while acc < eps:
        acc += sh[r] ** 2 / total
        r += 1
    x = np.concatenate([strengths, sh[:r]])
    imp = (alpha + 1) * x / (alpha * x + x.max())
    imp[:k] = np.clip(imp[:k] + previous.numpy(), 0, 1)

    assert r > 0 and M_new.shape == (d, k + r)
    assert torch.allclose(lam, torch.from_numpy(imp), rtol=1e-9)
    assert same_span(M_new[:, k:], torch.from_numpy(Uh[:, :r]))


def test_sgp_with_unit_importance_is_the_gpm_projection() -> None:
    gen = torch.Generator().manual_seed(7)
    R = data_along([0, 1, 2, 3, 4], [8.0, 4.0, 2.0, 1.0, 1.0])
    grad = torch.randn(5, D, generator=gen, dtype=F64)
    M = gpm.initial_basis(R, 0.9)
    ones = torch.ones(M.shape[1], dtype=F64)
    assert torch.allclose(project_out(grad, M, ones), project_out(grad, M), atol=1e-14)
    # importance -> 1 as alpha grows: SGP's projection approaches GPM's
    M_sgp, lam = sgp.initial_basis(R, 0.9, alpha=1e12)
    assert torch.allclose(lam, ones, atol=1e-11)
    assert torch.allclose(project_out(grad, M_sgp, lam), project_out(grad, M), atol=1e-10)


def test_sgp_extend_rejects_mismatched_importance() -> None:
    with pytest.raises(ValueError, match=r"lam must have shape \(2,\)"):
        sgp.extend_basis(torch.ones(D, 3), Q[:, :2], torch.ones(3), 0.9, 10)


# --- TRGP -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "selected", "new"),
    [
        # sorted energies: 6 (q3, new, index k), 5 (q1), 3 (q4), 2 (q5), 1 (q2); total 17
        (0.3, [2], [2]),  # 0 < 5.1 -> take 6
        (0.6, [2, 0], [2]),  # 6 < 10.2 -> take 5 -> 11
        (0.8, [2, 0, 3], [2, 3]),  # 11 < 13.6 -> take 3 -> 14
        (0.9, [2, 0, 3, 4], [2, 3, 4]),  # 14 < 15.3 -> take 2 -> 16
    ],
)
def test_trgp_extend_basis_hand_arithmetic(
    threshold: float, selected: list[int], new: list[int]
) -> None:
    R = data_along([0, 1, 2, 3, 4], EXTEND_ENERGIES)
    M = Q[:, :2]
    S_t, M_new = trgp.extend_basis(R, M, threshold)
    assert S_t.shape == (D, len(selected))
    for j, col in enumerate(selected):  # same order, each column up to sign
        assert math.isclose(abs(float(S_t[:, j] @ Q[:, col])), 1.0, rel_tol=1e-10)
    # the top residual direction q3 sits at index k = 2 of concat(delta, s^2): kept (>=)
    assert torch.equal(M_new[:, :2], M)
    assert same_span(M_new[:, 2:], Q[:, new])
    assert orthonormal_columns(M_new) and orthonormal_columns(S_t)


def test_trgp_task_zero_is_the_gpm_initial_rule() -> None:
    R = data_along([0, 1, 2, 3, 4], [16.0, 9.0, 4.0, 1.0, 1.0])
    S_0, M_0 = trgp.extend_basis(R, torch.zeros(D, 0), 0.85)
    # strict "<": 16/31, 25/31 < 0.85 -> 2 columns; the running-sum rule (take while the
    # sum is < 0.85 * 31 = 26.35: 16, 25, then 29) would keep 3
    assert S_0.shape == (D, 2) and torch.equal(S_0, M_0)
    assert torch.equal(M_0, gpm.initial_basis(R, 0.85))
    assert same_span(M_0, Q[:, :2])


# --- NESS -------------------------------------------------------------------------------


def test_ness_null_space_counts_small_singular_values_by_hand() -> None:
    sigma = torch.tensor([10.0, 5.0, 1.0, 0.01, 0.001], dtype=F64)  # sum 16.011
    V = orthonormal(5, 5, seed=8)
    G = (V * sigma**2) @ V.T
    B, complement, stats = null_space_basis(G, 0.001)  # tol 0.016011: 0.01 and 0.001
    assert B.shape == (5, 2) and same_span(B, V[:, 3:])
    # descending eigenvalue order: the smallest comes last
    assert abs(float(B[:, 0] @ V[:, 3])) == pytest.approx(1.0)
    assert abs(float(B[:, 1] @ V[:, 4])) == pytest.approx(1.0)
    assert same_span(complement, V[:, :3])  # the other eigenvectors
    assert orthonormal_columns(torch.cat([complement, B], dim=1))
    assert stats["rank"] == 2
    assert stats["sigma_sum"] == pytest.approx(16.011)
    assert stats["null_energy"] == pytest.approx(0.01**2 + 0.001**2)
    assert same_span(null_space_basis(G, 0.0001)[0], V[:, 4:])  # tol 0.0016011
    assert null_space_basis(G, 0.0)[0].shape == (5, 0)
    B_zero, complement_zero, _ = null_space_basis(torch.zeros(3, 3), 0.001)
    assert B_zero.shape == (3, 3) and complement_zero.shape == (3, 0)  # no data: all null
    with pytest.raises(ConfigError, match="eps1"):  # NESS's parameters refuse eps1 < 0
        NESSParams(eps1=-1.0)
    with pytest.raises(ConfigError, match=r"eps1=-0.1 must lie in \[0, 1\]"):  # so does the rule
        null_space_basis(G, -0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ness_exact_null_space_with_negative_round_off_eigenvalues(dtype: torch.dtype) -> None:
    d, rank = 12, 9
    V = orthonormal(d, d, seed=9)
    X = V[:, :rank] * torch.linspace(1.0, 2.0, rank, dtype=F64)
    # Round-off makes a Gram matrix's zero eigenvalues slightly negative on some LAPACK builds
    # and not on others; the null directions here get -1e-6 so that every build sees negatives.
    null = V[:, rank:]
    G = (X @ X.T - 1e-6 * null @ null.T).to(dtype)
    assert float(torch.linalg.eigvalsh(G).min()) < 0  # precondition: negatives do occur
    B, _, _ = null_space_basis(G, 1e-3)
    assert not bool(torch.isnan(B).any())
    assert B.shape == (d, d - rank)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert float(principal_angles(B, V[:, rank:]).max()) < tol


def test_ness_from_inputs_equals_ness_of_the_gram_matrix() -> None:
    R = data_along([0, 1, 2], [4.0, 1.0, 1e-9])
    B, _, _ = null_space_basis(gram_matrix(R), 1e-3)
    assert same_span(B, Q[:, 2:])  # q3 (sigma ~3e-5) and the 5 unused directions
    direct, _, _ = null_space_basis(R @ R.T, 1e-3)
    assert torch.allclose(B @ B.T, direct @ direct.T)


# --- projection -------------------------------------------------------------------------


def test_project_out_removes_exactly_the_span_of_m() -> None:
    gen = torch.Generator().manual_seed(10)
    M, N = Q[:, :3], Q[:, 3:]
    A = torch.randn(4, 3, generator=gen, dtype=F64)
    C = torch.randn(4, 5, generator=gen, dtype=F64)
    grad = A @ M.T + C @ N.T
    out = project_out(grad, M)
    assert torch.allclose(out, C @ N.T, atol=1e-14)  # the orthogonal part is untouched
    assert torch.allclose(out @ M, torch.zeros(4, 3, dtype=F64), atol=1e-14)
    scale = torch.tensor([1.0, 0.25, 0.0], dtype=F64)
    scaled = project_out(grad, M, scale)
    assert torch.allclose(scaled, (A * (1 - scale)) @ M.T + C @ N.T, atol=1e-14)


def test_project_out_follows_the_gradient_dtype_and_checks_shapes() -> None:
    grad = torch.ones(2, D)
    out = project_out(grad, Q[:, :2])
    assert out.dtype == torch.float32
    assert torch.allclose(out.double() @ Q[:, :2], torch.zeros(2, 2, dtype=F64), atol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        project_out(torch.ones(2, 5), Q[:, :2])
    with pytest.raises(ValueError, match=r"scale must have shape \(2,\)"):
        project_out(grad, Q[:, :2], torch.ones(3))
