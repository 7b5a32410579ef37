import pytest

from clbench.metrics import (
    average_accuracy,
    average_forgetting,
    average_incremental_accuracy,
    backward_transfer,
    forward_transfer,
    learning_accuracy,
    summarize,
)

# R[t][j]: accuracy on task j after training task t (rows and columns from task 1); computed by
# hand below.
R = [
    [0.90, 0.10, 0.20],
    [0.70, 0.80, 0.30],
    [0.60, 0.85, 0.95],
]


def test_metrics_match_hand_computation():
    assert average_accuracy(R) == pytest.approx((0.60 + 0.85 + 0.95) / 3)
    # BWT: ((0.60 - 0.90) + (0.85 - 0.80)) / 2
    assert backward_transfer(R) == pytest.approx(-0.125)
    # forgetting: task 1 best before the end 0.90 -> 0.60; task 2 best 0.80 -> 0.85
    assert average_forgetting(R) == pytest.approx(((0.90 - 0.60) + (0.80 - 0.85)) / 2)
    assert learning_accuracy(R) == pytest.approx((0.90 + 0.80 + 0.95) / 3)


def test_forgetting_uses_best_earlier_accuracy_not_the_first():
    r = [[0.5, 0.0], [0.9, 0.7]]  # task 1 improved while task 2 trained: no forgetting
    assert average_forgetting(r) == pytest.approx(0.5 - 0.9)
    assert backward_transfer(r) == pytest.approx(0.4)


def test_average_incremental_accuracy_and_forward_transfer_match_hand_computation():
    # AIA: after task 1 the mean of 0.90; after task 2 of 0.70, 0.80; after task 3 of all three.
    after = [0.90, (0.70 + 0.80) / 2, (0.60 + 0.85 + 0.95) / 3]
    assert average_incremental_accuracy(R) == pytest.approx(sum(after) / 3)
    # FWT: b = accuracies before training; R[1][2] - b_2 = 0.10 - 0.15, R[2][3] - b_3 = 0.30 - 0.10
    b = [0.12, 0.15, 0.10]
    assert forward_transfer(R, b) == pytest.approx(((0.10 - 0.15) + (0.30 - 0.10)) / 2)
    assert summarize(R, b)["forward_transfer"] == pytest.approx(0.075)
    assert summarize(R)["average_incremental_accuracy"] == pytest.approx(2.45 / 3)


def test_single_task_and_summary_keys():
    assert backward_transfer([[0.7]]) == 0.0
    assert average_forgetting([[0.7]]) == 0.0
    assert forward_transfer([[0.7]], [0.1]) == 0.0
    assert average_incremental_accuracy([[0.7]]) == pytest.approx(0.7)
    basic = {"acc", "bwt", "forgetting", "learning_accuracy", "average_incremental_accuracy"}
    assert set(summarize(R)) == basic
    assert set(summarize(R, [0.1, 0.1, 0.1])) == basic | {"forward_transfer"}


def test_forward_transfer_needs_one_initial_accuracy_per_task():
    with pytest.raises(ValueError, match="3 numbers"):
        forward_transfer(R, [0.1, 0.2])


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[0.1, 0.2]])
