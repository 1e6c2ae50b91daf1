"""Gate, deploy, sensor and delete on Seldon and KServe connections, through `dag.test()`.

The operators talk to the Kubernetes API emulator (tests/k8s_emulator) over real HTTP with
the real `kubernetes` client, in blocking and in deferrable mode (the trigger then runs in
line, as Airflow's `dag.test()` does), with templated arguments rendered from params.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator

KINDS = {"seldon": "SeldonDeployment", "kserve": "InferenceService", "seldon2": "Model"}
INGRESS = "http://ingress.example.test"
ACCESS_KEY = "AKIA-AIRFLOW-TEST"
SECRET_KEY = "airflow-s3-secret-that-must-never-leak"

PIPELINE_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import (
    DeleteModelServerOperator, DeployModelOperator, ModelGateOperator,
)
from modeldeploy_provider.sensors.modeldeploy import ModelServerReadySensor

CONN = "__CONN__"
DEFERRABLE = __DEFERRABLE__


@dag(
    dag_id="k8s___FLAVOR_____MODE__",
    schedule=None,
    params={"model_name": "iris-__FLAVOR__", "accuracy": 0.95, "replicas": 2},
)
def pipeline():
    metrics = {"accuracy": "{{ params.accuracy }}"}
    gate = ModelGateOperator(
        task_id="gate", metrics=metrics, rules="accuracy>=0.9", modeldeploy_conn_id=CONN
    )
    deploy = DeployModelOperator(
        task_id="deploy",
        modeldeploy_conn_id=CONN,
        model_name="{{ params.model_name }}",
        model_uri="s3://models/iris/{{ params.replicas }}",
        model_type="sklearn",
        service_config={__REPLICAS__: "{{ params.replicas }}"},
        metrics=metrics,
        gate_rules=["accuracy>=0.9"],
        timeout=300,  # MLflow's first registry set-up alone can take 30 s on a loaded CI
        deferrable=DEFERRABLE,
    )
    ready = ModelServerReadySensor(
        task_id="ready",
        model_server_uuid=deploy.output["uuid"],
        modeldeploy_conn_id=CONN,
        poke_interval=0.2,
        timeout=300,  # MLflow's first registry set-up alone can take 30 s on a loaded CI
        deferrable=DEFERRABLE,
    )
    delete = DeleteModelServerOperator(
        task_id="delete", model_server_uuid=deploy.output["uuid"], modeldeploy_conn_id=CONN,
        timeout=300,  # MLflow's first registry set-up alone can take 30 s on a loaded CI
    )
    delete_again = DeleteModelServerOperator(
        task_id="delete_again", model_server_uuid=deploy.output["uuid"],
        modeldeploy_conn_id=CONN,
    )
    gate >> deploy >> ready >> delete >> delete_again


pipeline()
"""


def kubernetes_connection(
    set_connection: Any, emu: KubernetesEmulator, flavor: str, tracking_uri: str
) -> str:
    return set_connection(
        f"k8s_{flavor}",
        f"modeldeploy_{flavor}",
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra={
            "kubeconfig_secret": json.dumps(emu.kubeconfig_dict()),
            "namespace": "default",
            "ingress_base_url": INGRESS,
            "storage_type": "s3",
            "s3_endpoint": "http://minio.minio:9000",
            "s3_region": "us-east-1",
            "tracking_uri": tracking_uri,
        },
    )


def pipeline_dag(flavor: str, conn_id: str, deferrable: bool) -> str:
    replicas = {"seldon": '"replicas"', "kserve": '"min_replicas"', "seldon2": '"replicas"'}[flavor]
    return (
        PIPELINE_DAG.replace("__CONN__", conn_id)
        .replace("__DEFERRABLE__", str(deferrable))
        .replace("__FLAVOR__", flavor)
        .replace("__MODE__", "deferrable" if deferrable else "blocking")
        .replace("__REPLICAS__", replicas)
    )


def our_triggers() -> dict[int, tuple[str, dict[str, Any]]]:
    """The provider's trigger rows in the metadata database, by id."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ours = Trigger.classpath.like("modeldeploy_provider.%")
        rows = session.scalars(select(Trigger).where(ours))
        return {row.id: (row.classpath, dict(row.kwargs)) for row in rows}


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
@pytest.mark.parametrize("flavor", ["seldon", "kserve", "seldon2"])
def test_gate_deploy_sensor_delete(
    flavor: str,
    deferrable: bool,
    run_dag: Any,
    set_connection: Any,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    conn_id = kubernetes_connection(
        set_connection, k8s_emulator, flavor, f"sqlite:///{tmp_path / 'registry.db'}"
    )
    # Seldon Core 2 serves on a runtime's Servers; two replicas fit the model's two
    k8s_emulator.seldon2.install_runtime("default", replicas=2)
    seen: list[dict[str, Any]] = []
    k8s_emulator.store.add_listener(
        lambda ev: seen.append(ev.obj) if ev.rkey.endswith(KINDS[flavor].lower() + "s") else None
    )

    before = our_triggers()
    result = run_dag(pipeline_dag(flavor, conn_id, deferrable))

    assert result.state == "success", result.states
    assert set(result.states.values()) == {"success"}, result.states
    assert result.value("gate")["passed"] is True
    deployed = result.value("deploy")
    assert deployed["action"] == "created"
    assert deployed["flavor"] == flavor
    assert deployed["model_name"] == f"iris-{flavor}"  # rendered from params
    assert deployed["state"] == "active"
    assert deployed["prediction_url"].startswith(INGRESS if flavor == "seldon" else "http")
    assert deployed["candidate_version"] == "1"  # registered through the connection's URI
    assert deployed["server"]["pipeline_name"] == f"k8s_{flavor}_{result.dag_id.split('_')[-1]}"
    assert deployed["server"]["step_name"] == "deploy"
    assert deployed["server"]["run_id"] == result.run_id
    ready = result.value("ready")
    assert ready["uuid"] == deployed["uuid"] and ready["state"] == "active"
    assert result.value("delete") == {"uuid": deployed["uuid"], "deleted": True}
    assert result.value("delete_again") == {"uuid": deployed["uuid"], "deleted": False}

    # what was written to the cluster: rendered templates, credentials in a Secret
    written = [o for o in seen if o.get("spec")]
    assert written, "no custom resource was written"
    spec = json.dumps(written[0]["spec"])
    assert "s3://models/iris/2" in spec  # model_uri rendered from params
    if flavor == "seldon":
        assert written[0]["spec"]["predictors"][0]["replicas"] == 2
    elif flavor == "seldon2":
        assert written[0]["spec"]["replicas"] == 2
    else:
        assert written[0]["spec"]["predictor"]["minReplicas"] == 2
    assert not k8s_emulator.list_objects(KINDS[flavor]), "delete left the resource behind"
    # no secret in any XCom
    dumped = json.dumps({f"{t}/{k}": v for (t, k), v in result.xcoms.items()}, default=str)
    assert SECRET_KEY not in dumped and k8s_emulator.token not in dumped

    triggers = [row for key, row in our_triggers().items() if key not in before]
    if deferrable:
        # the deploy deferred once, with only its own arguments serialized; the sensor found
        # the server ready already, so it did not defer
        assert len(triggers) == 1, triggers
        assert ("deploy", "pending_rollout") not in result.xcoms, "a stale pending rollout"
        for classpath, kwargs in triggers:
            assert classpath == "modeldeploy_provider.triggers.modeldeploy.ModelServerReadyTrigger"
            assert set(kwargs) == {
                "model_server_uuid",
                "modeldeploy_conn_id",
                "target_state",
                "timeout",
            }
            assert SECRET_KEY not in json.dumps(kwargs, default=str)
    else:
        assert triggers == []


CANARY_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

CONN = "__CONN__"


@dag(dag_id="k8s___FLAVOR___canary", schedule=None)
def pipeline():
    def deploy(task_id, version, **extra):
        return DeployModelOperator(
            task_id=task_id,
            modeldeploy_conn_id=CONN,
            model_name="iris-canary",
            model_uri=f"s3://models/iris/{version}",
            model_type="sklearn",
            metrics={"accuracy": 0.9 + version / 100},
            step_name="deploy",  # one server: the second run of the step rolls onto it
            timeout=60,
            deferrable=True,
            **extra,
        )

    first = deploy("first", 1)
    canary = deploy(
        "canary", 2,
        strategy={"kind": "canary", "percents": [25, 50], "bake_seconds": 0},
        analysis={"rules": [], "min_requests": 0},
    )
    first >> canary


pipeline()
"""

#: where each flavor's custom resource names the model it serves
SERVED_URI = {
    "kserve": lambda obj: obj["spec"]["predictor"]["model"]["storageUri"],
    "seldon": lambda obj: [p["graph"]["modelUri"] for p in obj["spec"]["predictors"]],
    "seldon2": lambda obj: obj["spec"]["storageUri"],
}


@pytest.mark.slow
@pytest.mark.parametrize("flavor", ["kserve", "seldon", "seldon2"])
def test_a_canary_through_the_deferrable_operator(
    flavor: str,
    run_dag: Any,
    set_connection: Any,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    """The same strategy on every Kubernetes flavor as on the local one: the operator starts
    the canary, the triggerer bakes and advances it, the candidate is promoted (alias moved);
    the rollout's state lives on the cluster, where any process finds it."""
    conn_id = kubernetes_connection(
        set_connection, k8s_emulator, flavor, f"sqlite:///{tmp_path / 'registry.db'}"
    )
    k8s_emulator.seldon2.install_runtime("default", replicas=2)  # room for two models
    percents: list[int] = []
    k8s_emulator.store.add_listener(
        lambda ev: (
            percents.append(ev.obj["spec"]["predictor"].get("canaryTrafficPercent", -1))
            if ev.rkey.endswith("inferenceservices") and ev.type == "MODIFIED"
            else None
        )
    )

    result = run_dag(CANARY_DAG.replace("__CONN__", conn_id).replace("__FLAVOR__", flavor))

    assert result.state == "success", result.states
    canary = result.value("canary")
    assert canary["action"] == "promoted", canary["message"]
    assert canary["candidate_version"] == "2" and canary["rollout"]["champion_version"] == "1"
    assert canary["rollout"]["phase"] == "succeeded"
    assert [s["challenger_percent"] for s in canary["rollout"]["steps"]] == [25, 50, 100]
    assert canary["prediction_url"] == result.value("first")["prediction_url"]
    [served] = k8s_emulator.list_objects(KINDS[flavor])
    uri = SERVED_URI[flavor](served)
    assert uri in ("s3://models/iris/2", ["s3://models/iris/2"]), uri
    if flavor == "kserve":  # the writes of the steps, in order
        applied = [p for p in percents if p >= 0]
        steps = [p for i, p in enumerate(applied) if i == 0 or p != applied[i - 1]]
        assert steps == [0, 25, 50, 100]
        assert "canaryTrafficPercent" not in served["spec"]["predictor"]
    [state] = [
        cm for cm in k8s_emulator.list_objects("configmaps", "default")
        if cm["metadata"]["name"].startswith("modeldeploy-rollout-iris-canary")
    ]  # fmt: skip
    assert '"phase": "succeeded"' in state["data"]["state"]


ROLLED_BACK_DAG = """
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

CONN = "__CONN__"


@dag(dag_id="k8s_kserve_rolled_back", schedule=None)
def pipeline():
    def deploy(task_id, uri, **extra):
        return DeployModelOperator(
            task_id=task_id, modeldeploy_conn_id=CONN, model_name="iris-rolled-back",
            model_uri=uri, model_type="sklearn", metrics={"accuracy": 0.95},
            step_name="deploy", timeout=60, **extra,
        )

    first = deploy("first", "s3://models/iris/1")
    # the documented pattern: the rollback stays a success, so its asset event is emitted;
    # the check after it turns the run red
    canary = deploy(
        "canary", "s3://unreachable-bucket/iris/2", fail_on_rollback=False,
        strategy={"kind": "canary", "percents": [50], "bake_seconds": 0},
        analysis={"rules": [], "min_requests": 0},
    )

    @task
    def fail_if_rolled_back(result):
        if result["action"] == "rolled_back":
            raise AirflowFailException(result["message"])

    first >> canary
    fail_if_rolled_back(canary.output)


pipeline()
"""


def test_a_rolled_back_rollout_reaches_downstream_dags_as_an_asset_event(
    run_dag: Any, set_connection: Any, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    """Airflow emits asset events only for tasks that succeed, so a rollout rolled back
    with `fail_on_rollback=True` emits none: with `fail_on_rollback=False` the rollback is
    the model's asset event (`action: rolled_back`) and a check task still fails the run."""
    from tests.airflow.test_lifecycle import _asset_events

    k8s_emulator.kserve.fail_when_uri_startswith = "s3://unreachable-bucket"
    conn_id = kubernetes_connection(
        set_connection, k8s_emulator, "kserve", f"sqlite:///{tmp_path / 'registry.db'}"
    )

    result = run_dag(ROLLED_BACK_DAG.replace("__CONN__", conn_id))

    assert result.states == {
        "first": "success",
        "canary": "success",
        "fail_if_rolled_back": "failed",
    }, result.states
    assert result.state == "failed"
    canary = result.value("canary")
    assert canary["action"] == "rolled_back" and canary["rollout"]["phase"] == "rolled_back"
    events = _asset_events("modeldeploy://kserve/default/iris-rolled-back", result.run_id)
    assert [(e["task"], e["action"], e["version"], e["serving"]) for e in events] == [
        ("first", "deployed", "1", "1"),
        ("canary", "rolled_back", "2", "1"),
    ]
    assert "the challenger failed" in events[1]["extra"]["reason"]
    assert events[1]["url"] == result.value("first")["prediction_url"]
