"""Start, stop and rollback operators on a KServe connection (emulated cluster), blocking and
deferrable, through `dag.test()`: two rollouts, a rollback to the first model, stop, start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.airflow.test_kubernetes import ACCESS_KEY, SECRET_KEY, kubernetes_connection
from tests.k8s_emulator import KubernetesEmulator

LIFECYCLE_DAG = """
from airflow.sdk import chain, dag
from modeldeploy_provider.operators.modeldeploy import (
    DeployModelOperator, RollbackModelOperator, StartModelServerOperator,
    StopModelServerOperator,
)
from modeldeploy_provider.records import model_asset

CONN = "__CONN__"


@dag(dag_id="lifecycle", schedule=None)
def lifecycle():
    common = dict(modeldeploy_conn_id=CONN, model_name="iris", model_type="sklearn", timeout=30)
    v1 = DeployModelOperator(
        task_id="v1", model_uri="s3://models/iris/1", step_name="serve",
        metrics={"accuracy": 0.91}, **common,
    )
    v2 = DeployModelOperator(
        task_id="v2", model_uri="s3://models/iris/2", step_name="serve",
        metrics={"accuracy": 0.93}, gate_rules="accuracy>=0.9", champion_metric="accuracy",
        deferrable=True, **common,
    )
    back = RollbackModelOperator(
        task_id="rollback", model_name="iris", modeldeploy_conn_id=CONN, timeout=30,
        outlets=[model_asset("iris", "kserve", "default")],
    )
    uuid = v1.output["uuid"]
    stop = StopModelServerOperator(
        task_id="stop", model_server_uuid=uuid, modeldeploy_conn_id=CONN, timeout=30
    )
    start = StartModelServerOperator(
        task_id="start", model_server_uuid=uuid, modeldeploy_conn_id=CONN, timeout=30,
        deferrable=True,
    )
    stop_deferred = StopModelServerOperator(
        task_id="stop_deferred", model_server_uuid=uuid, modeldeploy_conn_id=CONN, timeout=30,
        deferrable=True,
    )
    start_again = StartModelServerOperator(
        task_id="start_again", model_server_uuid=uuid, modeldeploy_conn_id=CONN, timeout=30
    )
    chain(v1, v2, back, stop, start, stop_deferred, start_again)


lifecycle()
"""


def test_rollouts_rollback_stop_and_start(
    run_dag: Any, set_connection: Any, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    conn_id = kubernetes_connection(
        set_connection, k8s_emulator, "kserve", f"sqlite:///{tmp_path / 'registry.db'}"
    )

    result = run_dag(LIFECYCLE_DAG.replace("__CONN__", conn_id))

    assert result.state == "success", result.states
    assert set(result.states.values()) == {"success"}, result.states
    v1, v2 = result.value("v1"), result.value("v2")
    assert (v1["action"], v2["action"]) == ("created", "updated")
    assert v2["uuid"] == v1["uuid"] and v2["prediction_url"] == v1["prediction_url"]
    assert (v1["champion_version"], v2["champion_version"]) == ("1", "2")
    assert "vs champion 0.91" in v2["gate_reason"]

    back = result.value("rollback")
    assert back["action"] == "rolled_back"
    assert back["uuid"] == v1["uuid"]
    assert back["champion_version"] == "1"
    assert back["model_version"] == "1"
    assert back["server"]["model_uri"] == "s3://models/iris/1"
    assert back["prediction_url"] == v1["prediction_url"]

    for task_id, state in [
        ("stop", "inactive"),
        ("start", "active"),
        ("stop_deferred", "inactive"),
        ("start_again", "active"),
    ]:
        info = result.value(task_id)
        assert info["uuid"] == v1["uuid"], task_id
        assert info["state"] == state, task_id
    assert result.value("start", "_link_PredictionUrlLink") == v1["prediction_url"]

    # each rollout and the rollback updated the model's asset, the record as extra
    uri = "modeldeploy://kserve/default/iris"
    events = _asset_events(uri, result.run_id)
    assert [(e["task"], e["action"], e["version"], e["serving"]) for e in events] == [
        ("v1", "deployed", "1", "1"),
        ("v2", "deployed", "2", "2"),
        ("rollback", "rolled_back", "2", "1"),
    ]
    assert events[0]["url"] == v1["prediction_url"] and events[2]["run_id"] == result.run_id
    assert back["record"]["action"] == "rolled_back" and v2["record"]["previous_version"] == "1"
    assert ACCESS_KEY not in json.dumps(events) and SECRET_KEY not in json.dumps(events)

    # OpenLineage: the registry's model version in, the serving endpoint out
    from airflow.providers.openlineage.extractors import OperatorLineage
    from modeldeploy.records import DeploymentRecord
    from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

    operator = DeployModelOperator(task_id="x", model_name="iris", model_uri="s3://m/1")
    operator._record = DeploymentRecord.model_validate(v2["record"])
    operator._tracking_uri = f"sqlite:///{tmp_path / 'registry.db'}"
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert isinstance(lineage, OperatorLineage)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (operator._tracking_uri, "models:/iris/2")
    ]
    endpoint = urlsplit(v2["prediction_url"])
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (f"{endpoint.scheme}://{endpoint.netloc}", endpoint.path)
    ]

    (resource,) = k8s_emulator.list_objects("InferenceService")
    assert "s3://models/iris/1" in json.dumps(resource["spec"])
    assert resource["metadata"].get("annotations", {}).get("serving.kserve.io/stop") in (
        None,
        "false",
    )


def _asset_events(uri: str, run_id: str) -> list[dict[str, Any]]:
    """The asset events of `uri` from one DAG run, oldest first (other tests in this worker
    deploy models of the same name, to the same asset, into the same database)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
        ).all()
        return [
            {
                "task": row.source_task_id,
                "action": row.extra.get("action"),
                "version": row.extra.get("version"),
                "serving": row.extra.get("serving_version"),
                "url": row.extra.get("url"),
                "run_id": row.extra.get("run_id"),
                "extra": row.extra,
            }
            for row in rows
        ]
