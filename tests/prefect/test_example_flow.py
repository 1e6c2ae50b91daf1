"""The example flow end to end against a real local MLflow scoring server: a first rollout
from the command line, a failed verification rolled back by the transaction, and a
candidate the gate rejects."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.prefect.helpers import flow_run_id, run_logs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_dags" / "continuous_deployment_prefect.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("continuous_deployment_prefect", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_flow_deploys_rolls_back_and_keeps_the_champion(
    mlflow_block: Any, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL
    from prefect_modeldeploy.blocks import MLflowDeployer

    home = Path(mlflow_block.home)
    example = load_example()

    # 1. As a user runs it: `python example_dags/continuous_deployment_prefect.py`, with
    #    the state directory from the environment (here: this test's, and its API server).
    env = {
        **os.environ,
        "MODELDEPLOY_HOME": str(home),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    url = re.search(r"Prediction URL: (http://127\.0\.0\.1:\d+/invocations)", run.stdout)
    assert url, run.stdout[-3000:]
    assert "Rollout: created" in run.stdout
    assert re.search(r"Live predictions: \[[012](, [012]){9}\]", run.stdout)
    assert "Gate: passed: accuracy" in run.stdout
    # Tracking store and artifacts live under MODELDEPLOY_HOME, not in the current directory.
    assert list(cwd.iterdir()) == []
    assert (home / "mlflow.db").is_file()

    block = MLflowDeployer(home=str(home))  # the same state and registry, in this process
    registry = block.get_registry()
    deployer = block.get_deployer()
    (server,) = deployer.find_model_server()
    assert server.prediction_url == url.group(1)
    assert server.config.model_version == "1"
    assert registry.get_champion(example.MODEL_NAME).version == "1"

    # 2. The live check fails (impossible accuracy): the transaction rolls back, the
    #    previous champion serves again at the same URL and the alias moves back.
    state = example.continuous_deployment(block, min_live_accuracy=1.01, return_state=True)
    assert state.is_failed()
    assert "VerificationError" in state.message
    (after,) = deployer.find_model_server()
    assert after.uuid == server.uuid
    assert after.prediction_url == server.prediction_url
    assert after.is_running
    assert after.config.model_version == "1"
    assert registry.get_champion(example.MODEL_NAME).version == "1"
    assert registry.champion_history(example.MODEL_NAME) == ["1"]
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "updated the model server in place" in logs
    assert "verification failed: live accuracy" in logs
    assert "Running rollback hook '_roll_back_deploy'" in logs
    assert f"rolled {example.MODEL_NAME} back to version 1" in logs
    assert after.predict(
        {"dataframe_split": {"columns": list(_iris_columns()), "data": [[5.1, 3.5, 1.4, 0.2]]}}
    ) == [0]

    # 3. A candidate below the gate: nothing changes, the champion keeps serving.
    report = example.continuous_deployment(block, min_accuracy=0.999)
    assert report["action"] == "kept"
    assert report["gate"].startswith("rejected: accuracy")
    assert report["prediction_url"] == server.prediction_url
    assert report["champion_version"] == "1"
    assert len(report["predictions"]) == 10
    (still,) = deployer.find_model_server()
    assert (still.uuid, still.config.model_version) == (server.uuid, "1")


def _iris_columns() -> list[str]:
    from sklearn.datasets import load_iris

    return list(load_iris(as_frame=True).data.columns)
