"""What a failure looks like from Airflow: the task fails with the platform's reason, a
failed rollout leaves the previous model serving, bad connections are named clearly, and
the sensor fails at once on a terminal failure or waits in reschedule mode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.airflow.test_kubernetes import KINDS, kubernetes_connection
from tests.k8s_emulator import KubernetesEmulator

FAILING_UPDATE_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator


@dag(dag_id="failing_update___FLAVOR__", schedule=None)
def failing_update():
    common = dict(
        modeldeploy_conn_id="__CONN__", model_name="iris", model_type="sklearn",
        register_model=False, timeout=20, deferrable=__DEFERRABLE__,
    )
    good = DeployModelOperator(task_id="good", model_uri="s3://models/iris/1", **common)
    bad = DeployModelOperator(
        task_id="bad", model_uri="s3://unreachable-bucket/iris/2", step_name="good", **common
    )
    good >> bad


failing_update()
"""


@pytest.mark.parametrize(
    ("flavor", "deferrable"), [("kserve", True), ("seldon", False)], ids=["kserve", "seldon"]
)
def test_failed_update_keeps_the_previous_model_and_fails_with_the_reason(
    flavor: str,
    deferrable: bool,
    run_dag: Any,
    set_connection: Any,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = getattr(k8s_emulator, flavor)
    controller.fail_when_uri_startswith = "s3://unreachable-bucket"
    controller.failure_message = "failed to download model: bucket unreachable-bucket not found"
    conn_id = kubernetes_connection(
        set_connection, k8s_emulator, flavor, f"sqlite:///{tmp_path / 'r.db'}"
    )
    source = (
        FAILING_UPDATE_DAG.replace("__FLAVOR__", flavor)
        .replace("__CONN__", conn_id)
        .replace("__DEFERRABLE__", str(deferrable))
    )

    result = run_dag(source)

    assert result.state == "failed"
    assert result.states == {"good": "success", "bad": "failed"}
    output = capfd.readouterr().out + caplog.text  # task log, and the engine's own logger
    assert "bucket unreachable-bucket not found" in output
    assert "restoring the previous model" in output
    # the one resource left serves the first model again
    (resource,) = k8s_emulator.list_objects(KINDS[flavor])
    assert "s3://models/iris/1" in json.dumps(resource["spec"])
    assert "unreachable-bucket" not in json.dumps(resource["spec"])


MISSING_CONN_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator


@dag(dag_id="bad_connection___CASE__", schedule=None)
def bad_connection():
    DeployModelOperator(
        task_id="deploy", modeldeploy_conn_id="__CONN__", model_name="iris",
        model_uri="s3://models/iris/1", model_type="sklearn",
    )


bad_connection()
"""


@pytest.mark.parametrize(
    ("case", "conn", "message"),
    [
        ("missing", None, "modeldeploy connection 'md_broken' is not defined: create it"),
        ("not_json", "{not json", "the extra field is not valid JSON"),
        ("wrong_type", "http", "has type 'http', but a modeldeploy connection needs one of"),
        ("bad_kubeconfig", "kubeconfig", "kubeconfig must be a mapping (dict or JSON object)"),
    ],
)
def test_a_bad_connection_fails_the_task_with_a_clear_message(
    case: str,
    conn: str | None,
    message: str,
    run_dag: Any,
    set_connection: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "token: s3cr3t-kubeconfig-token"
    if conn == "{not json":
        set_connection("md_broken", "modeldeploy_kserve", extra="{not json")
    elif conn == "http":
        set_connection("md_broken", "http", host="example.com")
    elif conn == "kubeconfig":
        set_connection("md_broken", "modeldeploy_seldon", extra={"kubeconfig_secret": f"[{secret}"})
    source = MISSING_CONN_DAG.replace("__CASE__", case).replace("__CONN__", "md_broken")

    result = run_dag(source)

    assert result.state == "failed"
    assert result.states == {"deploy": "failed"}
    output = capfd.readouterr().out
    assert message in output
    assert "s3cr3t-kubeconfig-token" not in output


SENSOR_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator
from modeldeploy_provider.sensors.modeldeploy import ModelServerReadySensor


@dag(dag_id="sensor___CASE__", schedule=None)
def sensor():
    deploy = DeployModelOperator(
        task_id="deploy", modeldeploy_conn_id="__CONN__", model_name="iris",
        model_uri="__URI__", model_type="sklearn", register_model=False,
        wait_for_completion=False,
    )
    ModelServerReadySensor(
        task_id="ready", model_server_uuid=deploy.output["uuid"], modeldeploy_conn_id="__CONN__",
        mode="__MODE__", poke_interval=0.2, timeout=30,
    )


sensor()
"""


def test_sensor_fails_at_once_on_a_terminal_failure(
    run_dag: Any,
    set_connection: Any,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    k8s_emulator.kserve.fail_when_uri_startswith = "s3://unreachable-bucket"
    k8s_emulator.kserve.failure_message = "failed to download model: access denied"
    conn_id = kubernetes_connection(set_connection, k8s_emulator, "kserve", "sqlite:///:memory:")
    source = (
        SENSOR_DAG.replace("__CASE__", "failure")
        .replace("__CONN__", conn_id)
        .replace("__URI__", "s3://unreachable-bucket/iris/1")
        .replace("__MODE__", "poke")
    )

    result = run_dag(source)

    assert result.states == {"deploy": "success", "ready": "failed"}
    assert result.value("deploy")["state"] == "pending_startup"  # did not wait
    output = capfd.readouterr().out
    assert "failed to download model: access denied" in output
    assert "Sensor has timed out" not in output


def test_sensor_in_reschedule_mode_waits_between_pokes(
    run_dag: Any, set_connection: Any, k8s_emulator: KubernetesEmulator
) -> None:
    k8s_emulator.seldon.delay = 1.0  # the platform takes a second to become ready
    conn_id = kubernetes_connection(set_connection, k8s_emulator, "seldon", "sqlite:///:memory:")
    source = (
        SENSOR_DAG.replace("__CASE__", "reschedule")
        .replace("__CONN__", conn_id)
        .replace("__URI__", "s3://models/iris/1")
        .replace("__MODE__", "reschedule")
    )

    result = run_dag(source)

    assert result.states == {"deploy": "success", "ready": "success"}, result.states
    assert result.value("deploy")["state"] == "pending_startup"
    assert result.value("ready")["state"] == "active"
    assert result.value("ready", "prediction_url") == result.value("deploy")["prediction_url"]
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        reschedules = session.scalar(select(func.count(TaskReschedule.id)))
    assert reschedules >= 1
