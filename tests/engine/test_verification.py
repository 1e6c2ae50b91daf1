"""Verification of live answers: tolerance for numbers, exact labels, the worst mismatches
quoted with their input rows; predictions keep float precision end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.verification import VerificationError, check_predictions, verify_predictions


def test_numbers_match_within_tolerance_and_labels_exactly() -> None:
    accuracy, passed, mismatches, _ = check_predictions(
        [1.0000001, 2.5, "cat", [1.0, 2.0]], [1.0, 2.5, "cat", [1.0, 2.0000001]], tolerance=1e-6
    )
    assert (accuracy, passed, mismatches) == (1.0, True, [])
    accuracy, passed, mismatches, message = check_predictions(
        [1.0, "dog"], [1.0, "cat"], tolerance=1.0
    )
    assert not passed and accuracy == 0.5
    assert mismatches[0].expected == "cat" and mismatches[0].got == "dog"
    assert "row 1: expected 'cat', got 'dog'" in message


def test_relative_tolerance_and_worst_mismatches_first_with_inputs() -> None:
    inputs = [{"x": i} for i in range(4)]
    _, passed, mismatches, message = check_predictions(
        [100.5, 10.0, 7.0, 3.3], [100.0, 10.0, 5.0, 3.0], inputs, rel_tolerance=0.01
    )
    assert not passed
    assert [m.row for m in mismatches] == [2, 3]  # 100.5 is within 1 %; worst (2.0) first
    assert mismatches[0].input == {"x": 2} and mismatches[0].error == pytest.approx(2.0)
    assert "row 2 {'x': 2}: expected 5.0, got 7.0 (off by 2)" in message
    assert "within 0 or 0.01 relative" in message


def test_bad_tolerance_is_refused() -> None:
    with pytest.raises(InvalidConfigError, match="tolerance"):
        check_predictions([1.0], [1.0], tolerance=-1)


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    import mlflow.sklearn
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    features, target = load_diabetes(return_X_y=True, as_frame=True)
    model = LinearRegression().fit(features, target)
    path = tmp_path_factory.mktemp("regression") / "model"
    mlflow.sklearn.save_model(
        model,
        path,
        input_example=features.head(3),
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
    )
    return path, features.head(8)


def test_a_served_regression_model_keeps_full_precision_and_verifies_with_tolerance(
    mlflow_deployer: MLflowModelDeployer, regression_model: tuple[Path, Any]
) -> None:
    import mlflow.pyfunc

    path, rows = regression_model
    local = mlflow.pyfunc.load_model(str(path)).predict(rows).tolist()
    server = mlflow_deployer.deploy_model(
        {"model_name": "diabetes", "model_uri": str(path)}, timeout=120
    )
    live = server.predict(rows)
    assert live["predictions"] if isinstance(live, dict) else live  # an answer per row
    exact = verify_predictions(server, rows, local)  # no tolerance: bit-for-bit equal
    assert exact.passed and exact.accuracy == 1.0

    shifted = [v + 1e-4 for v in local]
    assert verify_predictions(server, rows, shifted, tolerance=1e-3).passed
    wrong = [*local[:5], local[5] + 30.0, local[6] - 2.0, local[7]]
    with pytest.raises(VerificationError) as caught:
        verify_predictions(server, rows, wrong, tolerance=1e-3)
    result = caught.value.result
    assert result is not None and result.accuracy == 0.75
    assert [m.row for m in result.mismatches] == [5, 6]
    assert result.mismatches[0].input["bmi"] == rows.iloc[5]["bmi"]
    assert "off by 30" in str(caught.value) and server.prediction_url in str(caught.value)
