"""The one place in clbench that decomposes matrices.

The bases of docs/methods.md (GPM, SGP, TRGP, DFGP, NESS) all come from the decompositions
here, computed on the device of the input tensor (CUDA when the tensor lives there) and,
by default, in float64.

Routes of :func:`left_singular` for a d x n matrix R:

* ``"svd"``: thin SVD of R.
* ``"gram"``: eigendecomposition of the d x d Gram matrix R R^T. It is exact in exact
  arithmetic but squares the condition number: in a working precision with machine
  epsilon eps, singular values below about ``sqrt(eps) * s_max`` (times a modest factor
  that grows with d and n) are not resolved: roughly 1e-8 to 1e-7 * s_max in float64;
  they come out as round-off or 0. Their energy is below about 1e-14 of the largest, so
  energy thresholds such as GPM's are unaffected, and the leading singular values and
  the subspaces they span agree with a float64 SVD to about 1e-10 relative (the tests
  check this on matrices with a decaying spectrum).
  ``gram_dtype=torch.float32`` forms the product R R^T in float32 (the precision of the
  activations) and decomposes it in ``dtype``: it halves the cost of the product, which
  dominates, but its round-off (about sqrt(n) * 6e-8 of the largest eigenvalue) leaves
  only directions with s above roughly 3e-3 * s_max resolved. That suffices for energy
  thresholds such as GPM's 0.97, not for small singular values (NESS keeps float64).
* ``"randomized"``: a randomized range finder with oversampling and power iterations,
  for very large d; approximate, so ``"auto"`` never picks it.
* ``"auto"``: the cheapest exact route: ``"gram"`` when ``n >= GRAM_RATIO * d``,
  otherwise ``"svd"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: ``"auto"`` uses the Gram route when n >= GRAM_RATIO * d. Measured on CPU (float64),
#: eigh of R R^T is already faster than a thin SVD for square matrices (1440 x 1600: about
#: 0.3 s against 0.5 s) and the gap grows with n / d (360 x 22050: 0.06 s against 0.44 s).
#: The Gram route's accuracy (module docstring) does not depend on n / d.
GRAM_RATIO = 1.0

ROUTES = ("auto", "svd", "gram", "randomized")
_DTYPES = (torch.float32, torch.float64)


def check_dtype(dtype: torch.dtype) -> None:
    """Reject working precisions other than float32 and float64."""
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype} is not supported; use torch.float32 or torch.float64")


def as_matrix(x: Tensor, name: str, dtype: torch.dtype) -> Tensor:
    """Validate a real, finite, non-empty 2-D tensor; return it detached, in ``dtype``, on
    its own device (the device and precision rule of every decomposition here)."""
    check_dtype(dtype)
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {tuple(x.shape)}")
    if not (x.is_floating_point() and x.dtype in (torch.float16, torch.bfloat16, *_DTYPES)):
        raise ValueError(f"{name} must hold real floating-point values, got dtype {x.dtype}")
    x = x.detach().to(dtype)
    if not bool(torch.isfinite(x.sum())):  # one reduction; far cheaper than isfinite(x).all()
        raise ValueError(f"{name} contains NaN or infinite values (or its sum overflows)")
    return x


def choose_route(d: int, n: int) -> str:
    """The route ``method="auto"`` takes for a d x n matrix: ``"gram"`` if n >= GRAM_RATIO * d."""
    return "gram" if n >= GRAM_RATIO * d else "svd"


def gram_matrix(R: Tensor, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Return the d x d Gram matrix R R^T of a d x n matrix, computed in ``dtype`` on R's device."""
    R = as_matrix(R, "R", dtype)
    return R @ R.T


def gram_eigh(G: Tensor, *, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Return (U, s) of a Gram matrix G = R R^T: G = U diag(s**2) U^T, s descending.

    G must be square and symmetric up to round-off (``max|G - G^T| <= sqrt(eps) * max|G|``,
    eps of the coarser of G's and the working precision); only its lower triangle is read.
    Eigenvalues are clamped at 0 before the square root, so round-off negatives (common
    in float32) give s = 0, never NaN (docs/methods.md, NESS step 3). U is d x d with
    orthonormal columns, s has d entries.
    """
    W = as_matrix(G, "G", dtype)
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"G must be square, got shape {tuple(W.shape)}")
    eps = max(torch.finfo(G.dtype).eps, torch.finfo(dtype).eps)
    asym = (W - W.T).abs().max()
    if asym > eps**0.5 * W.abs().max():
        raise ValueError(f"G must be symmetric; max |G - G^T| = {float(asym):.3g}")
    evals, evecs = torch.linalg.eigh(W)
    s = evals.clamp_min(0).sqrt()
    return evecs.flip(1), s.flip(0)


def _randomized(
    R: Tensor, rank: int, oversample: int, power_iters: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Randomized range finder with power iterations, then a small exact SVD."""
    width = min(rank + oversample, min(R.shape))
    source = generator.device if generator is not None else R.device
    omega = torch.randn(R.shape[1], width, dtype=R.dtype, device=source, generator=generator)
    Q = torch.linalg.qr(R @ omega.to(R.device)).Q
    for _ in range(power_iters):
        Q = torch.linalg.qr(R @ torch.linalg.qr(R.T @ Q).Q).Q
    Ub, s, _ = torch.linalg.svd(Q.T @ R, full_matrices=False)
    return (Q @ Ub)[:, :rank], s[:rank]


def left_singular(
    R: Tensor,
    *,
    method: str = "auto",
    dtype: torch.dtype = torch.float64,
    gram_dtype: torch.dtype | None = None,
    rank: int | None = None,
    oversample: int = 10,
    power_iters: int = 4,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Return (U, s): left singular vectors and singular values of a d x n matrix R.

    U is d x k with orthonormal columns, s holds k values in descending order, both in
    ``dtype`` on R's device. k = min(d, n), or ``rank`` when given. ``rank`` is required
    by ``method="randomized"`` (which also uses ``oversample``, ``power_iters`` and the
    optional ``generator``; a generator may live on any device). ``gram_dtype`` is the
    precision of the Gram product on the Gram route (None: ``dtype``). See the module
    docstring for the routes and the accuracy of the Gram route.
    """
    if method not in ROUTES:
        raise ValueError(f"method={method!r} is not a route; valid: {', '.join(ROUTES)}")
    if method == "auto" and isinstance(R, Tensor) and R.dim() == 2:
        method = choose_route(*R.shape)  # an invalid R is reported by as_matrix below
    work_dtype = gram_dtype if method == "gram" and gram_dtype is not None else dtype
    R = as_matrix(R, "R", work_dtype)
    d, n = R.shape
    k = min(d, n)
    if rank is not None and not (isinstance(rank, int) and 1 <= rank <= k):
        raise ValueError(f"rank={rank!r} is invalid; expected an int in [1, min(d, n) = {k}]")
    if method == "randomized":
        if rank is None:
            raise ValueError("method='randomized' needs rank=<int in [1, min(d, n)]>")
        if oversample < 0 or power_iters < 0:
            raise ValueError(
                f"oversample={oversample}, power_iters={power_iters}; both must be >= 0"
            )
        return _randomized(R, rank, oversample, power_iters, generator)
    if method == "gram":
        U, s = gram_eigh(R @ R.T, dtype=dtype)
    else:
        U, s, _ = torch.linalg.svd(R, full_matrices=False)
    keep = k if rank is None else rank
    return U[:, :keep], s[:keep]


def principal_angles(A: Tensor, B: Tensor) -> Tensor:
    """Principal angles (radians, ascending) between span(A) and span(B).

    A (d x p) and B (d x q) must have orthonormal columns; min(p, q) angles are returned,
    computed in float64 as atan2(sin, cos) so that small and large angles are both exact.
    """
    A = as_matrix(A, "A", torch.float64)
    B = as_matrix(B, "B", torch.float64).to(A.device)
    if A.shape[0] != B.shape[0]:
        raise ValueError(
            f"A and B must have the same number of rows, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    if B.shape[1] > A.shape[1]:
        A, B = B, A
    cos = torch.linalg.svdvals(A.T @ B).clamp(0, 1)
    sin = torch.linalg.svdvals(B - A @ (A.T @ B)).clamp(0, 1).flip(0)
    return torch.atan2(sin, cos)
