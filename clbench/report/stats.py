"""Statistics over seeds behind every claim a report makes: spreads (standard deviation, 95 %
t-based or bootstrap confidence intervals of the mean) and two-sample tests (a paired t-test on
shared seeds, Welch's t-test otherwise) with Holm's correction for a family of comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

#: How a report states the spread of a mean over seeds.
SPREADS = {
    "std": "one standard deviation over seeds",
    "ci": "95 % confidence interval of the mean (Student's t over seeds)",
    "bootstrap": "95 % confidence interval of the mean (percentile bootstrap over seeds, "
    "10,000 resamples)",
}
LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
#: Fewer seeds than this per row: no row is called better than another.
MIN_SEEDS_FOR_CLAIM = 3


def check_spread(spread: str) -> str:
    """`spread` if it is one of `SPREADS`; ValueError naming the valid ones otherwise."""
    if spread not in SPREADS:
        raise ValueError(f"spread {spread!r} is not one of {', '.join(SPREADS)}")
    return spread


def interval(values: Sequence[float], spread: str) -> tuple[float, float]:
    """(low, high) around the mean of `values` for `spread` (`SPREADS`); (NaN, NaN) with fewer
    than two values, where no spread exists. The bootstrap resamples with a fixed seed, so a
    report is the same every time it is written."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    mean = float(x.mean())
    if spread == "std":
        half = float(x.std(ddof=1))
    elif spread == "ci":
        half = float(
            scipy_stats.t.ppf((1 + LEVEL) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        )
    else:
        check_spread(spread)
        rng = np.random.default_rng(0)
        means = rng.choice(x, size=(BOOTSTRAP_RESAMPLES, len(x)), replace=True).mean(axis=1)
        tail = 100 * (1 - LEVEL) / 2
        low, high = np.percentile(means, [tail, 100 - tail])
        return float(low), float(high)
    return mean - half, mean + half


@dataclass(frozen=True)
class Comparison:
    """Row a against row b on one quantity: the test used, the seeds each contributed, the
    difference of means (a - b) and the two-sided p-value."""

    test: str  # "paired t" or "Welch t"
    n_a: int
    n_b: int
    difference: float
    p: float


def _p_value(statistic_nan: bool, difference: float, p: float) -> float:
    """A p-value where both samples have no variance: the difference is exact (0 if it is not
    zero, 1 if it is); scipy returns NaN there."""
    if statistic_nan or math.isnan(p):
        return 0.0 if difference != 0 else 1.0
    return float(p)


def compare(
    a: Sequence[tuple[int, float]], b: Sequence[tuple[int, float]], paired: bool
) -> Comparison:
    """Compare two rows given as (seed, value) pairs. With `paired` (the seeds of both rows see
    the same data, each seed once a row) and at least `MIN_SEEDS_FOR_CLAIM` shared seeds, a paired
    t-test on the shared seeds; otherwise Welch's t-test on every value (runs pooled with
    `--allow-mixed` may repeat a seed)."""
    by_seed_a, by_seed_b = dict(a), dict(b)
    shared = sorted(set(by_seed_a) & set(by_seed_b))
    if paired and len(shared) >= MIN_SEEDS_FOR_CLAIM:
        x = np.array([by_seed_a[s] for s in shared], dtype=float)
        y = np.array([by_seed_b[s] for s in shared], dtype=float)
        difference = float((x - y).mean())
        constant = bool(np.all(x - y == (x - y)[0]))
        p = math.nan if constant else scipy_stats.ttest_rel(x, y).pvalue
        return Comparison("paired t", len(x), len(y), difference, _p_value(constant, difference, p))
    x = np.array([value for _, value in a], dtype=float)
    y = np.array([value for _, value in b], dtype=float)
    difference = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Comparison("Welch t", len(x), len(y), difference, math.nan)
    constant = bool(x.std() == 0 and y.std() == 0)
    p = math.nan if constant else scipy_stats.ttest_ind(x, y, equal_var=False).pvalue
    return Comparison("Welch t", len(x), len(y), difference, _p_value(constant, difference, p))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and is not counted)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted
