"""Basis rules of GPM, SGP, TRGP, GPCNS and NESS, and the shared gradient projection
(docs/methods.md).

Inputs are representation matrices R (d x n, one column per input vector of a layer) and
bases M (d x k, orthonormal columns). All computations run in float64 on R's device
through :mod:`clbench.linalg.decompose`; returned bases are float64 on R's device.

Thresholds are energy fractions in (0, 1]. Where a residual R - M M^T R is decomposed,
directions carrying at most ``NEGLIGIBLE_ENERGY`` (1e-12) of ||R||_F^2 are treated as
zero and never added: that is below what the Gram route resolves (decompose.py), so
their singular vectors are round-off and may even lie in span(M). This only matters for
thresholds within 1e-12 of 1, where the reference code would add such vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from clbench.linalg.decompose import as_matrix, gram_eigh, gram_matrix, left_singular

_F64 = torch.float64
NEGLIGIBLE_ENERGY = 1e-12


def _check_threshold(threshold: float) -> None:
    """Reject energy thresholds outside (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold={threshold!r} is invalid; expected a number in (0, 1]")


def _as_basis(M: Tensor, R: Tensor) -> Tensor:
    """Validate a d x k basis for the d x n matrix R and return it in float64 on R's device."""
    if not isinstance(M, Tensor) or M.dim() != 2 or M.shape[0] != R.shape[0]:
        shape = tuple(M.shape) if isinstance(M, Tensor) else type(M).__name__
        raise ValueError(f"M must be a {R.shape[0]} x k basis (rows of R), got {shape}")
    return M.detach().to(dtype=_F64, device=R.device)


def _steps_below(start: Tensor, increments: Tensor, target: float | Tensor) -> int:
    """Steps taken by: ``acc = start; for x in increments: if acc < target: acc += x``.

    This is the "add one at a time while acc < threshold" rule of docs/methods.md (GPM task t,
    TRGP); it counts the j with ``start + sum(increments[:j]) < target``.
    """
    before = torch.cat([increments.new_zeros(1), torch.cumsum(increments, 0)])[: len(increments)]
    return int((start + before < target).sum())


def energy_rank(s: Tensor, threshold: float) -> int:
    """GPM's first-task rule (docs/methods.md, GPM, Task 1):
    r = #{k : cumsum(s^2)_k / sum(s^2) < eps}.

    Strict "<", no +1. ``s`` holds singular values in descending order. Returns 0 when
    all of them are zero.
    """
    _check_threshold(threshold)
    energy = s.detach().to(_F64) ** 2
    total = energy.sum()
    if total == 0:
        return 0
    return int((torch.cumsum(energy, 0) / total < threshold).sum())


def _initial(R: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The leading (U[:, :r], s[:r]) of R kept by :func:`energy_rank`."""
    U, s = left_singular(R)
    r = energy_rank(s, threshold)
    return U[:, :r], s[:r]


def gpm_initial_basis(R: Tensor, threshold: float) -> Tensor:
    """GPM basis after the first task (docs/methods.md, GPM, Task 1): M = U[:, :r] with r from
    :func:`energy_rank` of R's singular values."""
    return _initial(R, threshold)[0]


def _residual_directions(R: Tensor, M: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return (U^, s^, ||R^||_F^2) of the residual R^ = R - M M^T R.

    Only directions with s^^2 > NEGLIGIBLE_ENERGY * ||R||_F^2 are returned.
    """
    residual = R - M @ (M.T @ R)
    U_hat, s_hat = left_singular(residual)
    kept = int((s_hat.square() > NEGLIGIBLE_ENERGY * R.square().sum()).sum())
    return U_hat[:, :kept], s_hat[:kept], residual.square().sum()


def _gpm_new_directions(R: Tensor, M: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The r new residual directions and their singular values by GPM's rule for task t > 0.

    total = ||R||_F^2; acc = (total - ||R^||_F^2) / total; add s^_k^2 / total one at a
    time while acc < threshold (docs/methods.md, GPM, Task t > 0).
    """
    _check_threshold(threshold)
    total = R.square().sum()
    if total == 0:
        return R.new_zeros(R.shape[0], 0), R.new_zeros(0)
    U_hat, s_hat, residual_energy = _residual_directions(R, M)
    r = _steps_below((total - residual_energy) / total, s_hat**2 / total, threshold)
    return U_hat[:, :r], s_hat[:r]


def gpm_extend_basis(R: Tensor, M: Tensor, threshold: float) -> tuple[Tensor, int]:
    """GPM basis update for task t > 0 (docs/methods.md, GPM, Task t > 0).

    Returns ``(M_new, added)`` with M_new = [M, U^[:, :r]] capped at d columns and
    ``added`` the number of new columns (0 when the residual carries too little energy or
    is exactly zero). ||R^||_F^2 is computed directly; it equals sum(s^^2).
    """
    R = as_matrix(R, "R", _F64)
    M = _as_basis(M, R)
    U_new, _ = _gpm_new_directions(R, M, threshold)
    M_new = torch.cat([M, U_new], dim=1)[:, : R.shape[0]]
    return M_new, M_new.shape[1] - M.shape[1]


def sgp_importance(x: Tensor, alpha: float) -> Tensor:
    """SGP's importance f(x) = (alpha + 1) x / (alpha x + max(x)) (docs/methods.md, SGP).

    Elementwise on non-negative values (singular values, not squared) with one shared
    max over all of ``x``. When every entry is 0 the result is 0 (the limit of f).
    """
    if alpha < 0:
        raise ValueError(f"alpha={alpha!r} is invalid; expected a number >= 0")
    x = x.detach().to(_F64)
    if x.numel() == 0:
        return x
    if bool((x < 0).any()):
        raise ValueError("sgp_importance expects non-negative values (singular values, norms)")
    top = x.max()
    if top == 0:
        return torch.zeros_like(x)
    return (alpha + 1) * x / (alpha * x + top)


def sgp_initial_basis(R: Tensor, threshold: float, alpha: float) -> tuple[Tensor, Tensor]:
    """SGP after the first task (docs/methods.md, SGP, Task 1): M = U[:, :r] by GPM's rule and
    lambda = f(s[:r]).

    Where GPM projects gradients with P = M M^T, SGP uses P = M diag(lambda) M^T.
    """
    U_r, s_r = _initial(R, threshold)
    return U_r, sgp_importance(s_r, alpha)


def sgp_extend_basis(
    R: Tensor, M: Tensor, lam: Tensor, threshold: float, alpha: float
) -> tuple[Tensor, Tensor]:
    """SGP update for task t > 0 (docs/methods.md, SGP, Task t).

    The strength of old basis vector u_i on the new data is ||R^T u_i||; this equals the
    reference's sqrt(sum_j (u_i^T u_cj)^2 s_cj^2) over the SVD of M M^T R, computed
    without that SVD. The residual gives r new vectors with values s^[:r] by GPM's rule.
    lambda_all = f(concat(strengths, s^[:r])) with one shared max; old entries become
    clip(new + previous, 0, 1). Returns (M_new, lam_new), both capped at d columns.
    Where GPM projects gradients with P = M M^T, SGP uses P = M diag(lambda) M^T.
    """
    R = as_matrix(R, "R", _F64)
    M = _as_basis(M, R)
    if lam.shape != (M.shape[1],):
        raise ValueError(f"lam must have shape ({M.shape[1]},) to match M, got {tuple(lam.shape)}")
    lam = lam.detach().to(dtype=_F64, device=R.device)
    strengths = torch.linalg.vector_norm(M.T @ R, dim=1)
    U_new, s_new = _gpm_new_directions(R, M, threshold)
    importance = sgp_importance(torch.cat([strengths, s_new]), alpha)
    k = M.shape[1]
    importance[:k] = (importance[:k] + lam).clamp(0, 1)
    d = R.shape[0]
    return torch.cat([M, U_new], dim=1)[:, :d], importance[:d]


def trgp_extend_basis(
    R: Tensor, M: Tensor, threshold: float, skip_first_new: bool = False
) -> tuple[Tensor, Tensor]:
    """TRGP memory update (docs/methods.md, TRGP, Basis update). Returns (S_t, M_new).

    delta_k = u_k^T R R^T u_k for each column of M and s^2 of the residual's singular
    values are sorted together in descending order; candidates are taken one at a time
    while their running sum is < threshold * ||R||_F^2 (at most d of them). S_t holds the
    selected columns in that order (old ones from M, new ones from the residual's U^);
    M_new = M plus the selected new ones. A candidate counts as new when its index in
    concat(delta, s^2) is >= k = M.shape[1]; with `skip_first_new`, > k, as the reference
    tests it (LYang-666/TRGP main_pmnist.py:291), so that the strongest residual direction
    stays in S_t but never joins M.

    The first task (M with no columns): as in the reference, S = M_new = GPM's first basis
    (:func:`gpm_initial_basis`, strict "<" count), not the running-sum rule above, which
    would keep one more direction.
    """
    R = as_matrix(R, "R", _F64)
    M = _as_basis(M, R)
    _check_threshold(threshold)
    if M.shape[1] == 0:
        S = gpm_initial_basis(R, threshold)
        return S, S
    d, k = R.shape[0], M.shape[1]
    delta = (M.T @ R).square().sum(dim=1)
    U_hat, s_hat, _ = _residual_directions(R, M)
    values = torch.cat([delta, s_hat**2])
    order = torch.sort(values, descending=True, stable=True).indices
    r = min(_steps_below(values.new_zeros(()), values[order], threshold * R.square().sum()), d)
    chosen = order[:r]
    S_t = torch.cat([M, U_hat], dim=1)[:, chosen]
    new = chosen[chosen > k if skip_first_new else chosen >= k] - k
    return S_t, torch.cat([M, U_hat[:, new]], dim=1)[:, :d]


def cumulative_rank(values: Tensor, threshold: float) -> int:
    """GPCNS's rank rule (docs/methods.md, GPCNS): r = #{k : cumsum(values)_k <= threshold *
    sum(values)}, non-strict, for non-negative values in descending order (singular values, or
    their squares). 0 when all are zero."""
    _check_threshold(threshold)
    values = values.detach().to(_F64)
    total = values.sum()
    if total == 0:
        return 0
    return int((torch.cumsum(values, 0) <= threshold * total).sum())


def _resolved(U: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """The singular pairs whose energy exceeds NEGLIGIBLE_ENERGY of the total (module docstring):
    the rest are round-off, and GPCNS's plain-sigma rule would count them as directions."""
    kept = int((s.square() > NEGLIGIBLE_ENERGY * s.square().sum()).sum())
    return U[:, :kept], s[:kept]


def gpcns_gradient_space(gradients: Tensor, threshold: float) -> Tensor:
    """GPCNS's gradient space of a layer (docs/methods.md, GPCNS): from the rows of every
    finished task's stored gradient (n x d, stacked), the top right singular vectors V (d x r),
    r by :func:`cumulative_rank` of the plain singular values."""
    rows = as_matrix(gradients, "gradients", _F64)
    V, s = _resolved(*left_singular(rows.T))
    return V[:, : cumulative_rank(s, threshold)]


def gpcns_merge(
    V: Tensor, F: Tensor, threshold: float, squared: bool, coefficient: float | None
) -> tuple[Tensor, Tensor]:
    """GPCNS's merged basis of a layer (docs/methods.md, GPCNS): B = the leading left singular
    vectors of [V | F] (gradient space beside the base method's feature basis), r of them by
    :func:`cumulative_rank` of the singular values sigma (`squared`: of sigma^2), and their
    importance lambda = (c + 1) sigma / (c sigma + max sigma) (:func:`sgp_importance`), or all ones
    when `coefficient` is None (after the first task). Returns (B, lambda), float64; a layer with
    neither gives d x 0."""
    d = V.shape[0]
    if F.shape[0] != d:
        raise ValueError(
            f"V and F must have the same rows, got {tuple(V.shape)} and {tuple(F.shape)}"
        )
    stacked = torch.cat([V.detach().to(_F64), F.detach().to(dtype=_F64, device=V.device)], dim=1)
    if stacked.shape[1] == 0:
        return stacked, stacked.new_zeros(0)
    U, s = _resolved(*left_singular(stacked))
    r = cumulative_rank(s.square() if squared else s, threshold)
    importance = (
        torch.ones_like(s[:r]) if coefficient is None else sgp_importance(s[:r], coefficient)
    )
    return U[:, :r], importance


def ness_null_space(G: Tensor, eps1: float) -> Tensor:
    """NESS's approximate null space of a layer's inputs (docs/methods.md, NESS steps 3-4).

    From the Gram matrix G = sum x x^T (d x d): eigenvalues clamped at 0, sigma = sqrt,
    eps_tol = eps1 * sum(sigma), r = #{sigma_i <= eps_tol}; returns B (d x r, float64),
    the eigenvectors of the r smallest eigenvalues in ascending order. r = 0 gives d x 0.
    """
    if not eps1 >= 0:
        raise ValueError(f"eps1={eps1!r} is invalid; expected a number >= 0")
    U, sigma = gram_eigh(G)
    r = int((sigma <= eps1 * sigma.sum()).sum())
    return U[:, U.shape[1] - r :].flip(1)


def ness_null_space_from_inputs(R: Tensor, eps1: float) -> Tensor:
    """:func:`ness_null_space` of G = R R^T for a representation matrix R (d x n)."""
    return ness_null_space(gram_matrix(R), eps1)


def adam_nscl_null_space(G: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Adam-NSCL's split of a layer's input space (docs/methods.md, Adam-NSCL): with the
    eigenvalues lambda of the uncentered covariance (or Gram matrix) G, clamped at 0, the null
    space is spanned by the eigenvectors with lambda <= threshold * min(lambda). The smallest
    eigenvalue is taken no lower than the numerical floor d * eps * max(lambda) (eps of float64):
    a rank-deficient G's zero eigenvalues come out as round-off of either sign, and without the
    floor the rule would keep a random subset of them. Returns (range basis, null basis),
    float64, their columns together an orthonormal basis of R^d."""
    if threshold < 1:
        raise ValueError(f"threshold {threshold} must be >= 1 (a multiple of the smallest one)")
    U, s = gram_eigh(G)  # descending
    eigenvalues = s.square()
    floor = len(eigenvalues) * torch.finfo(torch.float64).eps * eigenvalues[0]
    null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)
    return U[:, ~null], U[:, null]


@dataclass(frozen=True)
class Projection:
    """rows -> rows - rows M diag(scale) M^T, prepared once: M cast to the rows' dtype and device,
    M diag(scale) formed (docs/methods.md, GPM and SGP, Training: GPM, TRGP and DFGP use
    scale = None, all ones; SGP uses scale = lambda). Each application is one product and one fused
    multiply-add."""

    basis: Tensor
    weighted: Tensor

    @classmethod
    def of(cls, M: Tensor, scale: Tensor | None, like: Tensor) -> Projection:
        """The projection out of span(M) for rows of `like`'s dtype and device."""
        if M.dim() != 2:
            raise ValueError(f"M must be a (d, k) matrix, got shape {tuple(M.shape)}")
        if scale is not None and scale.shape != (M.shape[1],):
            raise ValueError(f"scale must have shape ({M.shape[1]},), got {tuple(scale.shape)}")
        basis = M.to(like)
        return cls(basis, basis if scale is None else basis * scale.to(like))

    def __call__(self, rows: Tensor) -> Tensor:
        if rows.dim() != 2 or rows.shape[1] != self.basis.shape[0]:
            raise ValueError(
                f"rows (n, d) and M (d, k) do not match: {tuple(rows.shape)} and "
                f"{tuple(self.basis.shape)}"
            )
        return self.apply(rows)

    def apply(self, rows: Tensor) -> Tensor:
        """`self(rows)` without the shape check (for the training step's inner loop)."""
        return torch.addmm(rows, rows @ self.weighted, self.basis.T, alpha=-1)


def project_out(grad: Tensor, M: Tensor, scale: Tensor | None = None) -> Tensor:
    """Return grad - grad M diag(scale) M^T for a gradient reshaped to (out, d) (`Projection`)."""
    return Projection.of(M, scale, like=grad)(grad)
