"""Gate, registry and rollout together: real MLflow registry on SQLite, real scoring servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.gate import Gate
from modeldeploy.registry import CHAMPION_ALIAS, ModelRegistry
from modeldeploy.rollout import continuous_deploy, rollback
from modeldeploy.status import ServiceState

from tests.conftest import SavedModels


def _rows(models: SavedModels) -> dict:
    return {"dataframe_split": {"columns": models.columns, "data": models.sample_rows}}


def test_register_candidate_records_metrics_and_lineage(
    tracking_uri: str, saved_models: SavedModels
) -> None:
    registry = ModelRegistry(tracking_uri)
    version = registry.register_candidate(
        "iris",
        str(saved_models.first),
        {"accuracy": 0.97, "f1": 0.96},
        lineage={"pipeline": "dag", "run_id": "manual__1", "step": "deploy"},
    )
    assert version.version == "1"
    assert version.metrics == {"accuracy": 0.97, "f1": 0.96}
    assert version.tags["modeldeploy.pipeline"] == "dag"
    assert version.tags["modeldeploy.run_id"] == "manual__1"
    assert version.tags["modeldeploy.step"] == "deploy"
    assert version.model_uri == str(saved_models.first)
    assert registry.get_champion("iris") is None
    registry.promote("iris", version.version)
    champion = registry.get_champion("iris")
    assert champion is not None and champion.version == "1"
    assert CHAMPION_ALIAS in champion.aliases
    # Straight from MLflow, not through our wrapper: the alias really moved.
    assert str(registry.client.get_model_version_by_alias("iris", "champion").version) == "1"


def test_registry_refuses_what_it_cannot_register(tracking_uri: str) -> None:
    registry = ModelRegistry(tracking_uri)
    with pytest.raises(Exception, match="could not register runs:/nope/model"):
        registry.register_candidate("iris", "runs:/nope/model", {"accuracy": 1.0})


def test_rollout_creates_updates_keeps_restarts_and_rolls_back(
    mlflow_deployer: MLflowModelDeployer, tracking_uri: str, saved_models: SavedModels
) -> None:
    registry = ModelRegistry(tracking_uri)
    gate = Gate.from_rules(["accuracy>=0.9"], champion_metric="accuracy")
    base = {"model_name": "iris", "pipeline_name": "cd", "step_name": "deploy", "run_id": "r1"}

    first = continuous_deploy(
        mlflow_deployer,
        {**base, "model_uri": str(saved_models.first)},
        {"accuracy": 0.95},
        gate,
        registry,
        timeout=120,
    )
    assert first.action == "created" and first.champion_version == "1"
    assert first.server is not None and first.server.model_version == "1"
    url = first.server.prediction_url

    second = continuous_deploy(
        mlflow_deployer,
        {**base, "model_uri": str(saved_models.second), "run_id": "r2"},
        {"accuracy": 0.96},
        gate,
        registry,
        timeout=120,
    )
    assert second.action == "updated" and second.server is not None
    assert second.server.prediction_url == url and second.champion_version == "2"
    assert registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    server = mlflow_deployer.get_model_server(second.server.uuid)
    assert server.predict(_rows(saved_models)) == [2, 2, 2]

    # A worse candidate: registered (tagged rejected) but the champion keeps serving.
    rejected = continuous_deploy(
        mlflow_deployer,
        {**base, "model_uri": str(saved_models.first), "run_id": "r3"},
        {"accuracy": 0.91},
        gate,
        registry,
        timeout=120,
    )
    assert rejected.action == "kept"
    assert "accuracy 0.91 vs champion 0.96" in rejected.message
    assert rejected.candidate_version == "3"
    assert registry.get_version("iris", "3").tags["modeldeploy.gate"] == "rejected"
    assert registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    assert server.predict(_rows(saved_models)) == [2, 2, 2]

    # Rejected while the champion is down: it is restarted, not left dark.
    mlflow_deployer.stop_model_server(server.uuid, timeout=30)
    restarted = continuous_deploy(
        mlflow_deployer,
        {**base, "model_uri": str(saved_models.first), "run_id": "r4"},
        {"accuracy": 0.5},
        gate,
        registry,
        timeout=120,
    )
    assert restarted.action == "restarted"
    assert server.check_status().state == ServiceState.ACTIVE
    assert server.predict(_rows(saved_models)) == [2, 2, 2]

    back = rollback(mlflow_deployer, registry, "iris", timeout=120)
    assert back.action == "rolled_back" and back.champion_version == "1"
    assert back.server is not None and back.server.prediction_url == url
    assert registry.get_champion("iris").version == "1"  # type: ignore[union-attr]
    assert server.predict(_rows(saved_models)) == [0, 0, 0]
    assert len(mlflow_deployer.find_model_server()) == 1

    with pytest.raises(InvalidConfigError, match="no previous champion"):
        rollback(mlflow_deployer, registry, "iris", timeout=120)

    # Every step left a record in the registry, and the outcome carries the same one.
    history = registry.deployment_history("iris")
    assert [(r.action, r.version, r.serving_version, r.run_id) for r in history] == [
        ("deployed", "1", "1", "r1"),
        ("deployed", "2", "2", "r2"),
        ("rejected", "3", "2", "r3"),
        ("rejected", "4", "2", "r4"),
        ("rolled_back", "2", "1", None),
    ]
    assert back.record is not None and rejected.record is not None
    assert history[-1].entry() == back.record.entry()
    assert history[2].entry() == rejected.record.entry()
    assert rejected.record.decision is not None and not rejected.record.decision.passed
    assert second.record is not None and second.record.previous_version == "1"
    assert back.record.uri == f"modeldeploy://mlflow/{str(mlflow_deployer.home).strip('/')}/iris"
    assert "accuracy 0.91 vs champion 0.96" in history[2].reason
    restored = registry.get_version("iris", "1").tags
    assert restored["modeldeploy.url"] == url
    assert restored["modeldeploy.server_uuid"] == str(server.uuid)
    assert restored["modeldeploy.deployed_at"] == back.record.at.isoformat(timespec="seconds")
    taken_out = registry.get_version("iris", "2").tags
    assert taken_out["modeldeploy.rolled_back_at"] == back.record.at.isoformat(timespec="seconds")
    assert taken_out["modeldeploy.rolled_back_reason"].startswith("rolled back on request")
    assert taken_out["modeldeploy.flavor"] == "mlflow"


def test_rollout_refuses_bad_input_before_registering(
    mlflow_deployer: MLflowModelDeployer, tracking_uri: str, md_home: Path
) -> None:
    registry = ModelRegistry(tracking_uri)
    with pytest.raises(InvalidConfigError, match="does not exist"):
        continuous_deploy(
            mlflow_deployer,
            {"model_name": "iris", "model_uri": "/no/such/model"},
            {"accuracy": 0.99},
            Gate.from_rules(["accuracy>=0.9"]),
            registry,
        )
    with pytest.raises(InvalidConfigError, match="timeout"):
        continuous_deploy(
            mlflow_deployer,
            {"model_name": "iris", "model_uri": "/x"},
            {},
            None,
            registry,
            timeout=-1,
        )
    assert registry.client.search_registered_models() == []
    assert mlflow_deployer.find_model_server() == []


def test_reverting_a_first_rollout_deletes_the_server_and_retracts_the_alias(
    mlflow_deployer: MLflowModelDeployer, tracking_uri: str, saved_models: SavedModels
) -> None:
    from modeldeploy.errors import ConflictError
    from modeldeploy.rollout import revert_rollout

    registry = ModelRegistry(tracking_uri)
    outcome = continuous_deploy(
        mlflow_deployer,
        {"model_name": "iris", "model_uri": str(saved_models.first)},
        {"accuracy": 0.95},
        Gate.from_rules(["accuracy>=0.9"]),
        registry,
        timeout=120,
    )
    assert outcome.action == "created"
    assert registry.get_champion("iris").version == "1"  # type: ignore[union-attr]

    stale = outcome.model_copy(update={"champion_version": "7"})
    with pytest.raises(ConflictError, match="champion is now version 1, not 7"):
        revert_rollout(mlflow_deployer, stale, registry, timeout=60)
    assert len(mlflow_deployer.find_model_server()) == 1

    reverted = revert_rollout(mlflow_deployer, outcome, registry, timeout=60)
    assert reverted is not None and reverted.action == "deleted"
    assert mlflow_deployer.find_model_server() == []
    assert registry.get_champion("iris") is None
    assert registry.champion_history("iris") == []
    undone = registry.get_version("iris", "1").tags
    assert undone["modeldeploy.gate"] == "rolled_back"  # no longer `passed`
    assert "a check after its rollout failed" in undone["modeldeploy.rolled_back_reason"]
    kept = outcome.model_copy(update={"action": "kept"})
    assert revert_rollout(mlflow_deployer, kept, registry) is None
