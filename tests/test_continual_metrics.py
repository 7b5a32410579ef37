"""The continual-evaluation metrics (clbench.metrics, README "Metrics") on a hand-worked curve."""

import pytest

from clbench.metrics import (
    Curve,
    StabilityGap,
    min_accuracy,
    stability_gaps,
    summarize,
    windowed_forgetting,
    worst_case_accuracy,
)
from results import HAND_ROWS


def table(rows: list[tuple[int, int, float]], task_ends: list[int]) -> Curve:
    iteration, task, accuracy = (list(column) for column in zip(*rows, strict=True))
    return Curve(iteration, task, accuracy, task_ends)


CURVE = table(HAND_ROWS, [4, 8, 12])


def test_min_and_worst_case_accuracy_match_the_hand_computed_values():
    # task 1 after iteration 4: 50, 79.5, 60, 75 -> 50; task 2 after 8: 87, 84 -> 84
    assert min_accuracy(CURVE) == pytest.approx((50 + 84) / 2)
    # the last task's final accuracy weighs 1/3, the past tasks' minima 2/3
    assert worst_case_accuracy(CURVE) == pytest.approx(95 / 3 + 2 / 3 * 67)


def test_windowed_forgetting_looks_only_within_its_window():
    # task 1 from its end: 80, 50, 79.5, 60, 75 (largest drop 80 -> 50 = 30 in every window);
    # task 2 from its end: 90, 87, 84 (3 between neighbours, 6 across a window of three)
    assert windowed_forgetting(CURVE, window=2) == pytest.approx((30 + 3) / 2)
    assert windowed_forgetting(CURVE, window=3) == pytest.approx((30 + 6) / 2)
    assert windowed_forgetting(CURVE) == pytest.approx((30 + 6) / 2)


def test_stability_gaps_give_the_drop_where_it_bottoms_out_and_the_recovery():
    assert stability_gaps(CURVE) == [
        # 80 at its end, 50 two iterations into task 2, within a point of 80 again at 4
        StabilityGap(task=1, drop=30.0, at=2, recovered_after=4),
        # 90 at its end, 87 then 84 during task 3: never back within a point
        StabilityGap(task=2, drop=6.0, at=4, recovered_after=None),
    ]


def test_recovery_counts_from_the_lowest_point_not_from_an_earlier_dip():
    # 70 at its end; out of the band (below 69) at 68, back at 69.5, then down to 66 and 67
    drifting = table(
        [(5, 1, 70.0), (6, 1, 68.0), (7, 1, 69.5), (8, 1, 66.0), (10, 1, 67.0), (10, 2, 88.0)],
        [5, 10],
    )
    assert stability_gaps(drifting) == [StabilityGap(1, 4.0, 3, None)]
    # down to 66 two iterations in, back at 69 (within a point of 70) one iteration later
    dipping = table(
        [(5, 1, 70.0), (6, 1, 68.0), (7, 1, 66.0), (8, 1, 69.0), (10, 1, 70.0), (10, 2, 88.0)],
        [5, 10],
    )
    assert stability_gaps(dipping) == [StabilityGap(1, 4.0, 2, 3)]


def test_a_task_that_stays_within_the_band_has_recovered_at_once_and_a_rise_is_no_gap():
    steady = table([(5, 1, 70.0), (7, 1, 69.5), (10, 1, 71.0), (10, 2, 88.0)], [5, 10])
    assert stability_gaps(steady) == [StabilityGap(1, 0.5, 2, 0)]
    rising = table([(5, 1, 70.0), (7, 1, 72.0), (10, 1, 75.0), (10, 2, 88.0)], [5, 10])
    assert stability_gaps(rising) == [StabilityGap(1, 0.0, 2, 0)]


def test_summarize_adds_the_continual_metrics_only_with_a_curve_of_two_tasks_or_more():
    matrix = [[80.0, 10.0, 10.0], [79.5, 90.0, 10.0], [75.0, 84.0, 95.0]]
    metrics = summarize(matrix, curve=CURVE)
    assert metrics["min_acc"] == pytest.approx(67)
    assert metrics["stability_gap"] == pytest.approx((30 + 6) / 2)
    assert {"min_acc", "wc_acc", "windowed_forgetting", "stability_gap"} <= set(metrics)
    assert "min_acc" not in summarize(matrix)
    single = table([(3, 1, 50.0), (6, 1, 70.0)], [6])
    assert "min_acc" not in summarize([[70.0]], curve=single)
