"""The ready-made flow's gate with a loss metric: a worse candidate never replaces the
champion, and a metric whose better direction is unknown is refused before any change."""

from __future__ import annotations

from typing import Any

import pytest
from prefect_modeldeploy.flows import continuous_deployment

from tests.prefect.helpers import flow_run_id, run_logs

pytestmark = [pytest.mark.usefixtures("prefect_harness")]

MODEL = "house-prices"


@pytest.fixture
def champion_rmse(mlflow_block: Any, saved_models: Any) -> Any:
    """A registered champion with RMSE 56.5 (the reported case); nothing serves yet."""
    registry = mlflow_block.get_registry()
    version = registry.register_candidate(MODEL, str(saved_models.first), {"rmse": 56.5})
    registry.promote(MODEL, version.version)
    return registry


def test_flow_keeps_the_champion_when_the_rmse_is_worse(
    mlflow_block: Any, saved_models: Any, champion_rmse: Any
) -> None:
    state = continuous_deployment(
        mlflow_block,
        MODEL,
        str(saved_models.second),
        metrics={"rmse": 60.13},
        champion_metric="rmse",  # no direction: rmse is well known, lower is better
        return_state=True,
    )
    outcome = state.result()
    assert outcome.action == "none" and outcome.decision is not None
    assert not outcome.decision.passed
    assert "rmse 60.13 vs champion 56.5, lower is better" in outcome.decision.reason
    assert champion_rmse.get_champion(MODEL).version == "1"
    assert mlflow_block.get_deployer().find_model_server() == []
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "lower is better (worse by 3.63; must be no worse)" in logs


def test_flow_refuses_an_unknown_metric_without_direction(
    mlflow_block: Any, saved_models: Any, champion_rmse: Any
) -> None:
    state = continuous_deployment(
        mlflow_block,
        MODEL,
        str(saved_models.second),
        metrics={"uplift": 3.0},
        champion_metric="uplift",
        return_state=True,
    )
    assert state.is_failed()
    error = str(state.result(raise_on_failure=False))
    assert "cannot tell whether a higher or a lower uplift is better" in error
    assert "direction='minimize'" in error
    # nothing was registered or deployed
    versions = champion_rmse.client.search_model_versions(f"name='{MODEL}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert mlflow_block.get_deployer().find_model_server() == []
