"""Subspace helpers the basis rules of several methods share (docs/methods.md): energy thresholds,
residual directions, the counting rule "add one at a time while below a target", and the
projection out of a basis.

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

from clbench.linalg.decompose import left_singular

F64 = torch.float64
NEGLIGIBLE_ENERGY = 1e-12


def check_threshold(threshold: float) -> None:
    """Reject energy thresholds outside (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold={threshold!r} is invalid; expected a number in (0, 1]")


def as_basis(M: Tensor, R: Tensor) -> Tensor:
    """Validate a d x k basis for the d x n matrix R and return it in float64 on R's device."""
    if not isinstance(M, Tensor) or M.dim() != 2 or M.shape[0] != R.shape[0]:
        shape = tuple(M.shape) if isinstance(M, Tensor) else type(M).__name__
        raise ValueError(f"M must be a {R.shape[0]} x k basis (rows of R), got {shape}")
    return M.detach().to(dtype=F64, device=R.device)


def steps_below(start: Tensor, increments: Tensor, target: float | Tensor) -> int:
    """Steps taken by: ``acc = start; for x in increments: if acc < target: acc += x``.

    The "add one at a time while acc < threshold" rule of docs/methods.md (GPM after the first
    task, TRGP); it counts the j with ``start + sum(increments[:j]) < target``.
    """
    before = torch.cat([increments.new_zeros(1), torch.cumsum(increments, 0)])[: len(increments)]
    return int((start + before < target).sum())


def energy_rank(s: Tensor, threshold: float) -> int:
    """r = #{k : cumsum(s^2)_k / sum(s^2) < eps}: strict "<", no +1 (docs/methods.md, GPM, Task 1).

    ``s`` holds singular values in descending order. Returns 0 when all of them are zero.
    """
    check_threshold(threshold)
    energy = s.detach().to(F64) ** 2
    total = energy.sum()
    if total == 0:
        return 0
    return int((torch.cumsum(energy, 0) / total < threshold).sum())


def leading_directions(R: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The leading (U[:, :r], s[:r]) of R kept by :func:`energy_rank`."""
    U, s = left_singular(R)
    r = energy_rank(s, threshold)
    return U[:, :r], s[:r]


def residual_directions(R: Tensor, M: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return (U^, s^, ||R^||_F^2) of the residual R^ = R - M M^T R.

    Only directions with s^^2 > NEGLIGIBLE_ENERGY * ||R||_F^2 are returned.
    """
    residual = R - M @ (M.T @ R)
    U_hat, s_hat = left_singular(residual)
    kept = int((s_hat.square() > NEGLIGIBLE_ENERGY * R.square().sum()).sum())
    return U_hat[:, :kept], s_hat[:kept], residual.square().sum()


def resolved(U: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """The singular pairs whose energy exceeds NEGLIGIBLE_ENERGY of the total (module docstring):
    the rest are round-off, which a rule counting plain singular values would take as
    directions."""
    kept = int((s.square() > NEGLIGIBLE_ENERGY * s.square().sum()).sum())
    return U[:, :kept], s[:kept]


@dataclass(frozen=True)
class Projection:
    """rows -> rows - rows M diag(scale) M^T, prepared once: M cast to the rows' dtype and device,
    M diag(scale) formed (docs/methods.md, GPM and SGP, Training; scale None means all ones). Each
    application is one product and one fused multiply-add."""

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
