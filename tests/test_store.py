import json

from clbench.store import RESULT_FORMAT, read_result, validate_result, write_json_atomic


def result(matrix):
    return {
        "format": RESULT_FORMAT,
        "name": "x",
        "spec": {
            "benchmark": "b",
            "strategy": "s",
            "model": "mlp",
            "seed": 0,
            "protocol": {},
            "model_params": {},
            "strategy_params": {},
        },
        "accuracy_matrix": matrix,
        "metrics": {"acc": 0.5, "bwt": 0.0, "forgetting": 0.0, "learning_accuracy": 0.5},
        "tasks": [
            {"train_seconds": 1.0, "eval_seconds": 0.1, "trainable_params": 10, "kept_bytes": 0}
        ]
        * len(matrix),
        "environment": {},
    }


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "a" / "r.json"
    write_json_atomic(target, result([[0.5]]))
    assert read_result(target)["accuracy_matrix"] == [[0.5]]
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, result([[0.5]]))
    try:
        write_json_atomic(target, {"bad": float("nan")})  # JSON forbids NaN: the write fails
    except ValueError:
        pass
    assert read_result(target)["accuracy_matrix"] == [[0.5]]
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_truncated_or_invalid_results_are_rejected(tmp_path):
    target = tmp_path / "r.json"
    text = json.dumps(result([[0.5, 0.1], [0.4, 0.9]]))
    target.write_text(text[: len(text) // 2])
    assert read_result(target) is None
    assert validate_result(result([[0.5, 0.1]])) == "accuracy_matrix is not square"
    assert "not a percentage in [0, 100]" in validate_result(result([[101.5]]))
    assert validate_result({"format": 1}).startswith("missing name")


def test_results_of_the_fraction_format_are_not_read_as_percentages():
    old = {**result([[0.5]]), "format": 1}
    assert validate_result(old) == f"format 1 (expected {RESULT_FORMAT})"


def test_results_with_tasks_numbered_from_0_are_invalid():
    assert validate_result({**result([[0.5]]), "format": 2}) == "format 2 (expected 4)"


def test_optional_metrics_and_initial_accuracy_are_checked_when_present():
    document = result([[50.0, 10.0], [40.0, 90.0]])
    document["metrics"]["forward_transfer"] = "high"
    assert validate_result(document) == (
        'metrics.forward_transfer is "high", expected a finite number or null'
    )
    document["metrics"]["forward_transfer"] = None
    assert validate_result(document) is None
    document["initial_accuracy"] = [10.0, 120.0]
    assert "initial_accuracy holds a value that is not a percentage" in validate_result(document)


def test_task_subspaces_hold_a_size_per_quantity_and_layer():
    document = result([[50.0]])
    document["tasks"][0]["subspaces"] = {"kept basis size": {"fc1": 3}, "null-space rank": {}}
    assert validate_result(document) is None
    document["tasks"][0]["subspaces"] = {"kept basis size": {"fc1": "x"}}
    assert validate_result(document) == (
        'tasks[0].subspaces.kept basis size.fc1 is "x", expected a finite number'
    )
    document["tasks"][0]["subspaces"] = [3]
    assert validate_result(document) == "tasks[0].subspaces is a list, expected an object"
