import pytest

from clbench.metrics import (
    average_accuracy,
    average_forgetting,
    backward_transfer,
    learning_accuracy,
    summarize,
)

# R[t][j]: accuracy on task j after training task t; computed by hand below.
R = [
    [0.90, 0.10, 0.20],
    [0.70, 0.80, 0.30],
    [0.60, 0.85, 0.95],
]


def test_metrics_match_hand_computation():
    assert average_accuracy(R) == pytest.approx((0.60 + 0.85 + 0.95) / 3)
    # BWT: ((0.60 - 0.90) + (0.85 - 0.80)) / 2
    assert backward_transfer(R) == pytest.approx(-0.125)
    # forgetting: task 0 best before the end 0.90 -> 0.60; task 1 best 0.80 -> 0.85
    assert average_forgetting(R) == pytest.approx(((0.90 - 0.60) + (0.80 - 0.85)) / 2)
    assert learning_accuracy(R) == pytest.approx((0.90 + 0.80 + 0.95) / 3)


def test_forgetting_uses_best_earlier_accuracy_not_the_first():
    r = [[0.5, 0.0], [0.9, 0.7]]  # task 0 improved while task 1 trained: no forgetting
    assert average_forgetting(r) == pytest.approx(0.5 - 0.9)
    assert backward_transfer(r) == pytest.approx(0.4)


def test_single_task_and_summary_keys():
    assert backward_transfer([[0.7]]) == 0.0
    assert average_forgetting([[0.7]]) == 0.0
    assert set(summarize(R)) == {"acc", "bwt", "forgetting", "learning_accuracy"}


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[0.1, 0.2]])
