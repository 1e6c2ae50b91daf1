"""`VerifyPredictionsOperator`: the engine's verification from a DAG, against a real local
MLflow scoring server; a failure names the worst rows with their inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERIFY_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import (
    DeployModelOperator, VerifyPredictionsOperator,
)

ROWS = ROWS_JSON


@dag(dag_id="verify", schedule=None)
def verify():
    deploy = DeployModelOperator(
        task_id="deploy", model_name="iris-verify", model_uri=MODEL_URI,
        register_model=False, timeout=120,
    )
    common = dict(model_server_uuid=deploy.output["uuid"], data=ROWS)
    good = VerifyPredictionsOperator(task_id="good", expected=[0, 0, 0], **common)
    bad = VerifyPredictionsOperator(task_id="bad", expected="[0, 1, 0]", **common)
    deploy >> [good, bad]


verify()
"""


def test_verification_passes_and_fails_with_the_worst_rows(
    run_dag: Any,
    set_connection: Any,
    saved_models: Any,
    tmp_path: Path,
    capfd: Any,
) -> None:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    home = tmp_path / "home"
    home.mkdir()
    set_connection("modeldeploy_default", "modeldeploy_mlflow", extra={"home": str(home)})
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    source = VERIFY_DAG.replace("ROWS_JSON", json.dumps(rows)).replace(
        "MODEL_URI", repr(str(saved_models.first))
    )
    try:
        result = run_dag(source)
    finally:
        for server in MLflowModelDeployer({"home": home}).find_model_server():
            server.delete(force=True)
    assert result.states["deploy"] == "success"
    assert result.states["good"] == "success"
    assert result.value("good")["passed"] is True
    assert result.value("good")["accuracy"] == 1.0
    assert result.states["bad"] == "failed"
    log = capfd.readouterr().out
    assert "live accuracy 0.6667 on 3 row(s)" in log
    assert "row 1 {'sepal length (cm)': 4.9" in log and "expected 1, got 0" in log
