"""The canary example flow end to end on the embedded default: a champion, a canary that is
promoted, then a candidate with broken labels: the probe catches it at the first step, the
rollout is rolled back and the flow run fails inside its transaction."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.prefect.helpers import artifacts_of, model_events

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "canary_deployment_prefect.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("canary_deployment_prefect", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_canary_flow_promotes_then_rolls_back_a_bad_challenger(mlflow_block: Any) -> None:
    example = load_example()
    registry = mlflow_block.get_registry()

    first = example.canary_deployment(mlflow_block, bake_seconds=1)
    assert first["action"] == "created"
    second = example.canary_deployment(mlflow_block, bake_seconds=1)
    assert second["action"] == "promoted", second["message"]
    assert second["prediction_url"] == first["prediction_url"]
    assert registry.get_champion(example.MODEL_NAME).version == "2"

    before = datetime.now(UTC)
    state = example.canary_deployment(
        mlflow_block, broken_labels=True, bake_seconds=1, return_state=True
    )
    assert state.is_failed()
    assert "RolloutRolledBack" in state.message
    assert registry.get_champion(example.MODEL_NAME).version == "2"
    assert registry.get_version(example.MODEL_NAME, "3").tags["modeldeploy.rollout"] == (
        "canary:rolled_back"
    )
    assert "step 1 failed: accuracy" in state.message
    (server,) = mlflow_block.get_deployer().find_model_server()
    assert server.config.model_version == "2"

    # the failed run shows the rollback: an event for automations, a report on its (sub)flow
    # run's page
    (event,) = model_events(f"modeldeploy.model.mlflow.{example.MODEL_NAME}", 1, since=before)
    assert event.event == "modeldeploy.model.rolled_back"
    assert (event.payload["version"], event.payload["serving_version"]) == ("3", "2")
    assert "step 1 failed: accuracy" in event.payload["reason"]
    assert event.payload["url"] == first["prediction_url"]
    artifacts = artifacts_of(f"modeldeploy-{example.MODEL_NAME}", None)
    assert [a.data.splitlines()[0].split(":")[0] for a in artifacts] == [
        "# Deployed",
        "# Deployed",
        "# Rolled back",
    ]
    assert "| Serving now | 2 |" in artifacts[-1].data
