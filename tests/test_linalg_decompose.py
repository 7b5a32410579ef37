"""Known-answer tests of clbench.linalg.decompose and the bench-svd command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clbench.linalg import bench
from clbench.linalg.decompose import (
    GRAM_RATIO,
    choose_route,
    gram_eigh,
    gram_matrix,
    left_singular,
    principal_angles,
)

F64 = torch.float64
EPS64 = torch.finfo(F64).eps


def orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A rows x cols matrix with orthonormal columns."""
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=F64)).Q


def with_spectrum(d: int, n: int, s: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """R = U diag(s) V^T with random orthonormal U (d x k) and V (n x k); returns (R, U)."""
    U = orthonormal(d, len(s), seed)
    V = orthonormal(n, len(s), seed + 1)
    return (U * s) @ V.T, U


def geometric(k: int, ratio: float) -> torch.Tensor:
    """Well-separated singular values 1, ratio, ratio^2, ..."""
    return ratio ** torch.arange(k, dtype=F64)


def max_angle(A: torch.Tensor, B: torch.Tensor) -> float:
    return float(principal_angles(A, B).max())


@pytest.mark.parametrize("shape", [(12, 40), (40, 12), (20, 20)])
@pytest.mark.parametrize("method", ["svd", "gram", "auto"])
def test_exact_routes_match_numpy_float64_svd(shape: tuple[int, int], method: str) -> None:
    d, n = shape
    k = min(d, n)
    R, _ = with_spectrum(d, n, geometric(k, 0.7), seed=1)
    U, s = left_singular(R, method=method)
    U_np, s_np, _ = np.linalg.svd(R.numpy(), full_matrices=False)
    assert U.shape == (d, k) and s.shape == (k,)
    assert torch.allclose(U.T @ U, torch.eye(k, dtype=F64), atol=1e-10)
    # s_min / s_max = 0.7**39 ~ 1e-6 is resolved by the Gram route in float64
    assert torch.allclose(s, torch.from_numpy(s_np), rtol=1e-9, atol=1e-13)
    # every singular vector matches numpy's up to sign (values are well separated)
    cos = (torch.from_numpy(U_np).T @ U).diagonal().abs()
    assert torch.allclose(cos, torch.ones(k, dtype=F64), atol=1e-8)


def test_gram_route_resolution_is_sqrt_eps_times_s_max() -> None:
    # leading values are resolved to ~1e-10 relative; values below sqrt(eps)*s_max are not
    s_true = torch.cat([geometric(6, 0.5), torch.tensor([1e-10, 1e-12], dtype=F64)])
    R, U_true = with_spectrum(30, 400, s_true, seed=3)
    U, s = left_singular(R, method="gram")
    assert torch.allclose(s[:6], s_true[:6], rtol=1e-10)
    assert bool((s[6:] <= 10 * math.sqrt(EPS64) * s_true[0]).all())
    assert max_angle(U[:, :6], U_true[:, :6]) < 1e-10
    # the SVD route resolves the tiny values too
    s_svd = left_singular(R, method="svd")[1]
    assert torch.allclose(s_svd[:8], s_true, rtol=1e-4)


def test_auto_route_is_the_documented_exact_route() -> None:
    assert GRAM_RATIO == 1.0
    assert choose_route(10, 10) == "gram" and choose_route(10, 9) == "svd"
    for shape in [(10, 30), (30, 10)]:
        R, _ = with_spectrum(*shape, geometric(10, 0.8), seed=4)
        expected = left_singular(R, method=choose_route(*shape))
        got = left_singular(R, method="auto")
        assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])


def test_rank_truncates_exact_routes() -> None:
    R, U_true = with_spectrum(15, 50, geometric(15, 0.6), seed=5)
    U, s = left_singular(R, rank=4)
    assert U.shape == (15, 4)
    assert torch.allclose(s, geometric(4, 0.6), rtol=1e-10)
    assert max_angle(U, U_true[:, :4]) < 1e-9


def test_randomized_recovers_an_exactly_low_rank_matrix() -> None:
    s_true = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5], dtype=F64)
    R, U_true = with_spectrum(300, 200, s_true, seed=6)
    gen = torch.Generator().manual_seed(0)
    U, s = left_singular(R, method="randomized", rank=5, oversample=5, power_iters=2, generator=gen)
    assert torch.allclose(s, s_true, rtol=1e-10)
    assert max_angle(U, U_true) < 1e-8
    assert torch.allclose(U.T @ U, torch.eye(5, dtype=F64), atol=1e-12)
    again = left_singular(
        R,
        method="randomized",
        rank=5,
        oversample=5,
        power_iters=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(U, again[0])


def test_randomized_leading_part_of_a_decaying_spectrum() -> None:
    R, U_true = with_spectrum(200, 300, geometric(60, 0.5), seed=7)
    U, s = left_singular(R, method="randomized", rank=5, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(s, geometric(5, 0.5), rtol=1e-8)
    assert max_angle(U, U_true[:, :5]) < 1e-6


def test_float32_working_precision_and_input_dtypes() -> None:
    R, _ = with_spectrum(10, 60, geometric(10, 0.8), seed=8)
    U32, s32 = left_singular(R.float(), dtype=torch.float32)
    assert U32.dtype == torch.float32 and s32.dtype == torch.float32
    assert torch.allclose(s32.double(), geometric(10, 0.8), rtol=1e-4)
    U64, _ = left_singular(R.float())  # float32 input, float64 work by default
    assert U64.dtype == F64


def test_gram_eigh_reconstructs_and_orders_descending() -> None:
    s_true = torch.tensor([3.0, 2.0, 1.0, 0.0, 0.0], dtype=F64)
    Q = orthonormal(5, 5, seed=9)
    G = (Q * s_true**2) @ Q.T
    U, s = gram_eigh(G)
    assert torch.allclose(s, s_true, atol=1e-7)  # zero eigenvalues: sqrt of round-off
    assert bool((s[:-1] >= s[1:]).all())
    assert torch.allclose((U * s**2) @ U.T, G, atol=1e-12)
    assert torch.allclose(gram_matrix(Q * s_true), G, atol=1e-12)


def test_gram_eigh_clamps_negative_float32_eigenvalues() -> None:
    # G = X X^T with X of rank 5 in 12 dims: 7 exact zero eigenvalues, computed with
    # round-off of either sign in float32
    gen = torch.Generator().manual_seed(10)
    X = torch.randn(12, 5, generator=gen)
    G = X @ X.T
    assert float(torch.linalg.eigvalsh(G).min()) < 0  # the case that produced NaN before
    _, s = gram_eigh(G, dtype=torch.float32)
    assert not bool(torch.isnan(s).any()) and bool((s >= 0).all())
    assert bool((s[5:] < 1e-2 * s[0]).all())
    _, s64 = gram_eigh(G)
    assert not bool(torch.isnan(s64).any()) and bool((s64 >= 0).all())


def test_principal_angles_known_values() -> None:
    e = torch.eye(4, dtype=F64)
    for theta in (1e-9, 0.3, 1.2):
        A = e[:, :2]
        B = torch.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 2]], dim=1)
        angles = principal_angles(A, B)
        assert torch.allclose(angles, torch.tensor([0.0, theta], dtype=F64), rtol=1e-12, atol=1e-15)
    # a line inside a plane: one angle, zero
    assert float(principal_angles(e[:, :2], (e[:, :1] + e[:, 1:2]) / math.sqrt(2))[0]) < 1e-15


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "qr"}, "not a route"),
        ({"rank": 0}, "rank=0"),
        ({"rank": 11}, "rank=11"),
        ({"method": "randomized"}, "needs rank"),
        ({"method": "randomized", "rank": 2, "oversample": -1}, "oversample"),
        ({"dtype": torch.float16}, "dtype"),
    ],
)
def test_left_singular_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    R = torch.ones(10, 20)
    with pytest.raises(ValueError, match=match):
        left_singular(R, **kwargs)


def test_bad_matrices_are_rejected() -> None:
    with pytest.raises(ValueError, match="2-D"):
        left_singular(torch.ones(3))
    with pytest.raises(ValueError, match="at least one"):
        left_singular(torch.ones(3, 0))
    with pytest.raises(ValueError, match="NaN"):
        left_singular(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="floating"):
        left_singular(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="square"):
        gram_eigh(torch.ones(3, 4))
    with pytest.raises(ValueError, match="symmetric"):
        gram_eigh(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))


@pytest.mark.slow
def test_bench_svd_prints_a_matching_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--shapes", "256x64", "64x512", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells
        for line in out.splitlines()
        if (cells := line.replace("|", " ").split()) and cells[0] in ("256x64", "64x512")
    }
    shape, route, numpy_s, rank_np, exact_s, _, rank_exact, angle, *fast = rows["256x64"]
    assert route == "svd" and fast == ["-"] * 4  # no Gram product on the SVD route
    assert float(numpy_s) > 0 and float(exact_s) > 0
    assert rank_np == rank_exact and 0 < int(rank_np) < 64
    assert float(angle) < 1e-6
    shape, route, _, rank_np, _, _, rank_exact, angle, fast_s, _, rank_fast, fast_angle = rows[
        "64x512"
    ]
    assert route == "gram" and rank_np == rank_exact == rank_fast
    assert float(angle) < 1e-6 and float(fast_s) > 0
    assert float(fast_angle) < 0.1  # float32 product: close, not exact


def test_bench_svd_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "12by4"])
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])
    if not torch.cuda.is_available():
        assert bench.main(["--device", "cuda", "--shapes", "8x16"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["svd", "gram", "auto"])
def test_cuda_matches_cpu(method: str) -> None:
    # compare the leading 20 values (0.8**19 ~ 1e-2 of s_max), resolved by every route
    R, _ = with_spectrum(64, 500, geometric(64, 0.8), seed=11)
    U_cpu, s_cpu = left_singular(R, method=method)
    U_gpu, s_gpu = left_singular(R.cuda(), method=method)
    assert U_gpu.device.type == "cuda" and s_gpu.device.type == "cuda"
    assert torch.allclose(s_gpu[:20].cpu(), s_cpu[:20], rtol=1e-9)
    assert max_angle(U_gpu[:, :20].cpu(), U_cpu[:, :20]) < 1e-8
    G = gram_matrix(R)
    U_g, s_g = gram_eigh(G.cuda())
    assert U_g.device.type == "cuda"
    assert torch.allclose(s_g[:20].cpu(), gram_eigh(G)[1][:20], rtol=1e-9)
    _, s_32 = gram_eigh(G.cuda().float(), dtype=torch.float32)  # round-off negatives clamp
    assert not bool(torch.isnan(s_32).any()) and bool((s_32 >= 0).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_randomized_with_a_cpu_generator() -> None:
    R, U_true = with_spectrum(100, 80, torch.tensor([4.0, 2.0, 1.0], dtype=F64), seed=12)
    U, s = left_singular(
        R.cuda(), method="randomized", rank=3, generator=torch.Generator().manual_seed(0)
    )
    assert U.device.type == "cuda"
    assert torch.allclose(s.cpu(), torch.tensor([4.0, 2.0, 1.0], dtype=F64), rtol=1e-10)
    assert max_angle(U.cpu(), U_true) < 1e-8


def test_float32_gram_product_keeps_the_leading_subspace() -> None:
    """The float32 product resolves directions well above sqrt(n) * eps32 of s_max."""
    gen = torch.Generator().manual_seed(3)
    d, n = 40, 4000
    U_true = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=gen)).Q
    s_true = 10.0 ** -torch.linspace(0, 1.5, d, dtype=torch.float64)  # 1 .. ~0.03
    V = torch.linalg.qr(torch.randn(n, d, dtype=torch.float64, generator=gen)).Q
    R = ((U_true * s_true) @ V.T).float()
    U, s = left_singular(R, gram_dtype=torch.float32)
    assert U.dtype == torch.float64 and s.dtype == torch.float64
    torch.testing.assert_close(s, s_true, rtol=1e-3, atol=1e-5)
    angles = principal_angles(U[:, :10], U_true[:, :10])
    assert float(angles.max()) < 1e-3
