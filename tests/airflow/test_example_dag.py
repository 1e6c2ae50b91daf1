"""The example DAG end to end against a real local MLflow scoring server.

Train, evaluate, gate, deploy, verify live predictions, report; the second run updates the
same server in place (same URL), and a third whose gate rejects keeps the champion."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "continuous_deployment.py"

pytestmark = pytest.mark.slow


def test_example_dag_creates_updates_in_place_then_keeps_champion(run_dag, md_home: Path) -> None:
    first = run_dag(EXAMPLE)
    assert first.state == "success", first.states
    assert set(first.states.values()) == {"success"}, first.states
    deployed = first.value("deploy")
    assert deployed["action"] == "created"
    assert deployed["flavor"] == "mlflow"
    assert deployed["state"] == "active"
    assert deployed["gate_passed"] is True
    assert deployed["gate_reason"].startswith("passed: accuracy")
    url = deployed["prediction_url"]
    assert url.startswith("http://127.0.0.1:")
    assert first.value("deploy", "prediction_url") == url
    assert first.value("deploy", "_link_PredictionUrlLink") == url

    report = first.value("report")
    assert report["prediction_url"] == url
    assert report["accuracy"] >= 0.9
    assert report["what_happened"] == "created a new model server"
    verification = first.value("verify")
    assert verification["checked"] == 10
    assert verification["correct"] >= 8

    # the live endpoint answers what the DAG said it would
    rows = first.value("evaluate")["rows"]
    answer = requests.post(
        url,
        json={"dataframe_split": {"columns": rows["columns"], "data": rows["data"][:3]}},
        timeout=30,
    )
    assert answer.status_code == 200
    assert [int(p) for p in answer.json()["predictions"]] == verification["predictions"][:3]

    second = run_dag(EXAMPLE)
    assert second.state == "success", second.states
    updated = second.value("deploy")
    assert updated["action"] == "updated"
    assert updated["uuid"] == deployed["uuid"]
    assert updated["prediction_url"] == url
    assert int(updated["model_version"]) == int(deployed["model_version"]) + 1
    assert "vs champion" in updated["gate_reason"]
    assert second.value("report")["what_happened"] == "updated the model server in place (same URL)"

    # a candidate the gate rejects: the champion keeps serving, the task still succeeds
    rejected = run_dag(EXAMPLE, conf={"min_accuracy": 0.999})
    assert rejected.state == "success", rejected.states
    kept = rejected.value("deploy")
    assert kept["action"] == "kept"
    assert kept["gate_passed"] is False
    assert "< 0.999" in kept["gate_reason"]
    assert kept["uuid"] == deployed["uuid"]
    assert kept["prediction_url"] == url
    assert kept["champion_version"] == updated["model_version"]
    assert rejected.value("report")["what_happened"] == "kept the champion serving"
