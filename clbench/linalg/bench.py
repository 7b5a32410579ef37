"""``clbench bench-svd``: the SVD utility's auto route against numpy's float64 SVD.

The reference GPM code decomposes each representation matrix with
``np.linalg.svd(R, full_matrices=False)``. This benchmark times numpy's float64 SVD against
:func:`clbench.linalg.left_singular` (``method="auto"``) on the representation shapes of
docs/methods.md, twice where the auto route is the Gram route: exact (the product R R^T in
float64) and with the product in float32 (``gram_dtype=torch.float32``, the eigensolver in
float64). Each variant's basis kept by GPM's first-task rule is compared with numpy's: its rank
and the largest principal angle between the two.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from clbench.arguments import OneLineParser, positive_int, seed
from clbench.linalg.basis import energy_rank
from clbench.linalg.decompose import choose_route, left_singular, principal_angles
from clbench.machine import device_name

#: Representation shapes (d x n) of docs/methods.md's paper models: AlexNet-5 conv1-3 and fc2
#: on CIFAR-100, reduced ResNet-18 layers on MiniImageNet.
SHAPES: dict[str, tuple[int, int]] = {
    "48x20184": (48, 20184),
    "576x14400": (576, 14400),
    "512x2500": (512, 2500),
    "2048x125": (2048, 125),
    "1440x1600": (1440, 1600),
    "360x22050": (360, 22050),
}
THRESHOLD = 0.97


def synthetic_representation(d: int, n: int, seed: int) -> Tensor:
    """A d x n float32 matrix that looks like post-ReLU activations.

    ReLU of A B / sqrt(n) plus Gaussian noise of standard deviation 1e-3, where A (d x m)
    has Gaussian columns scaled by 1/k (k = 1..m, m = min(d, n)) and B (m x n) is
    Gaussian: a decaying spectrum with a dominant mean direction. Under GPM's rule at
    eps = 0.97 it keeps roughly 5-35 % of min(d, n) directions.
    """
    gen = torch.Generator().manual_seed(seed)
    m = min(d, n)
    decay = torch.arange(1, m + 1, dtype=torch.float32).reciprocal()
    A = torch.randn(d, m, generator=gen) * decay
    B = torch.randn(m, n, generator=gen)
    return torch.relu(A @ B / n**0.5 + 1e-3 * torch.randn(d, n, generator=gen))


def _median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, synchronising the device around each."""
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _blas_threads() -> str:
    """Thread counts of the BLAS libraries loaded in this process, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS default (threadpoolctl not installed)"
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in pools) or "none loaded"


@dataclass(frozen=True)
class Timing:
    """One clbench variant on one shape: seconds, kept rank, largest angle to numpy's basis."""

    seconds: float
    rank: int
    max_angle_deg: float | None


@dataclass(frozen=True)
class Row:
    """One line of the benchmark table: numpy, the exact route and the float32-product route
    (None where the route is a thin SVD, which has no Gram product)."""

    shape: str
    route: str
    numpy_s: float
    rank_numpy: int
    exact: Timing
    fast: Timing | None


def _variant(
    R: Tensor, U_np: Tensor, r_np: int, gram_dtype: torch.dtype | None, repeats: int, sync
) -> Timing:
    seconds = _median_seconds(lambda: left_singular(R, gram_dtype=gram_dtype), repeats, sync)
    U, s = left_singular(R, gram_dtype=gram_dtype)
    rank = energy_rank(s, THRESHOLD)
    angle = None
    if r_np and rank:
        angle = float(torch.rad2deg(principal_angles(U_np[:, :r_np], U[:, :rank].cpu()).max()))
    return Timing(seconds, rank, angle)


def bench_shape(d: int, n: int, device: torch.device, repeats: int, seed: int) -> Row:
    """Time numpy and both clbench variants on one synthetic matrix; compare kept bases."""
    R = synthetic_representation(d, n, seed)
    R_numpy = R.double().numpy()
    R_device = R.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    numpy_s = _median_seconds(
        lambda: np.linalg.svd(R_numpy, full_matrices=False), repeats, lambda: None
    )
    U_array, s_np, _ = np.linalg.svd(R_numpy, full_matrices=False)
    r_np = energy_rank(torch.from_numpy(s_np), THRESHOLD)
    U_np = torch.from_numpy(U_array)
    route = choose_route(d, n)
    exact = _variant(R_device, U_np, r_np, None, repeats, sync)
    fast = None
    if route == "gram":
        fast = _variant(R_device, U_np, r_np, torch.float32, repeats, sync)
    return Row(f"{d}x{n}", route, numpy_s, r_np, exact, fast)


_HEADER = (
    f"{'shape':>10} {'route':>5} {'numpy s':>8} {'rank':>4} | "
    f"{'exact s':>8} {'speedup':>7} {'rank':>4} {'angle deg':>9} | "
    f"{'f32-prod s':>10} {'speedup':>7} {'rank':>4} {'angle deg':>9}"
)


def _cells(timing: Timing | None, numpy_s: float, width: int) -> str:
    if timing is None:
        return f"{'-':>{width}} {'-':>7} {'-':>4} {'-':>9}"
    angle = "-" if timing.max_angle_deg is None else f"{timing.max_angle_deg:.1e}"
    return (
        f"{timing.seconds:>{width}.4f} {numpy_s / timing.seconds:>6.1f}x "
        f"{timing.rank:>4} {angle:>9}"
    )


def format_row(row: Row) -> str:
    """Render one row to match the columns of the table header."""
    return (
        f"{row.shape:>10} {row.route:>5} {row.numpy_s:>8.4f} {row.rank_numpy:>4} | "
        f"{_cells(row.exact, row.numpy_s, 8)} | {_cells(row.fast, row.numpy_s, 10)}"
    )


def _shape(text: str) -> tuple[int, int]:
    """Parse 'DxN' into (d, n) with positive integers."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"bad shape {text!r}; expected DxN, e.g. 576x14400")
    return int(parts[0]), int(parts[1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the process exit status."""
    parser = OneLineParser(
        prog="clbench bench-svd",
        description="Time clbench's SVD utility (auto route) against numpy's float64 SVD "
        f"and compare the bases kept by GPM's rule at eps={THRESHOLD}.",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=_shape,
        default=list(SHAPES.values()),
        metavar="DxN",
        help=f"matrix shapes (default: {' '.join(SHAPES)})",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed runs per shape (median)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the synthetic matrices")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    name = device_name(device)
    print(
        f"device: {name} | torch threads: {torch.get_num_threads()} | "
        f"numpy BLAS threads: {_blas_threads()} | eps: {THRESHOLD} | repeats: {args.repeats}"
    )
    warmup = synthetic_representation(8, 64, args.seed)
    np.linalg.svd(warmup.double().numpy(), full_matrices=False)
    left_singular(warmup.to(device))
    print(_HEADER)
    print("-" * len(_HEADER))
    for d, n in args.shapes:
        print(format_row(bench_shape(d, n, device, args.repeats, args.seed)), flush=True)
    return 0
