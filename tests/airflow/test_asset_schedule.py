"""Once, with the real scheduler: a DAG scheduled on a model's asset runs after a deployment.

A deploy DAG (KServe on the emulated cluster) and a consumer DAG with
`schedule=[model_asset(...)]` are serialized, then a real `airflow scheduler` (local
executor) runs the deploy; its asset event (through the `modeldeploy` alias) triggers the
consumer, whose task writes the triggering event's extra to a file. Tasks reach the
scheduler's execution API on a real `airflow api-server`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.airflow.apiserver import api_server
from tests.airflow.conftest import connection_env
from tests.airflow.test_kubernetes import INGRESS
from tests.k8s_emulator import KubernetesEmulator

#: the whole chain (scheduler start, two DAG runs) on a loaded two-core machine
DEADLINE = 420.0

DEPLOY_DAG = """
import pendulum
from airflow.sdk import DAG
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

with DAG("deploy_iris", schedule="@once", start_date=pendulum.datetime(2026, 1, 1)):
    DeployModelOperator(
        task_id="deploy", modeldeploy_conn_id="k8s_kserve", model_name="iris",
        model_uri="s3://models/iris/1", model_type="sklearn", timeout=120,
    )
"""

CONSUMER_DAG = """
import json
import pendulum
from airflow.sdk import DAG, task
from modeldeploy_provider.records import model_asset

IRIS = model_asset("iris", "kserve", "default")

with DAG("on_iris_deployed", schedule=[IRIS], start_date=pendulum.datetime(2026, 1, 1)):
    @task
    def note(triggering_asset_events=None):
        events = triggering_asset_events[IRIS]
        with open("__OUT__", "w") as out:
            json.dump([{"uri": e.asset.uri, "extra": e.extra} for e in events], out)

    note()
"""


def test_a_dag_scheduled_on_the_model_asset_runs_after_a_deployment(
    k8s_emulator: KubernetesEmulator, migrated_template: Path, tmp_path: Path
) -> None:
    home, dags, out = tmp_path / "airflow", tmp_path / "dags", tmp_path / "event.json"
    home.mkdir()
    dags.mkdir()
    (dags / "deploy_iris.py").write_text(DEPLOY_DAG)
    (dags / "on_iris_deployed.py").write_text(CONSUMER_DAG.replace("__OUT__", str(out)))
    name, value = connection_env(
        "k8s_kserve",
        "modeldeploy_kserve",
        extra={
            "kubeconfig_secret": json.dumps(k8s_emulator.kubeconfig_dict()),
            "namespace": "default",
            "ingress_base_url": INGRESS,
            "tracking_uri": f"sqlite:///{tmp_path / 'registry.db'}",
        },
    )
    env = {
        name: value,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API_AUTH__JWT_SECRET": "scheduler-test-jwt-secret-0123456789",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "MODELDEPLOY_HOME": str(tmp_path / "md"),
    }
    with api_server(home, migrated_template, env, apps="core,execution") as api:
        run_env = {**api.env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api.url}/execution/"}
        airflow = [sys.executable, "-m", "airflow"]
        subprocess.run([*airflow, "dags", "reserialize"], env=run_env, check=True, timeout=300,
                       capture_output=True)  # fmt: skip
        log = open(tmp_path / "scheduler.log", "w")  # noqa: SIM115 - closed below
        scheduler = subprocess.Popen(
            [*airflow, "scheduler"], env=run_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            states = _wait_for_consumer(home / "airflow.db", scheduler, DEADLINE)
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            try:
                scheduler.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(scheduler.pid, signal.SIGKILL)
                scheduler.wait(10)
            log.close()
    task_logs = "".join(p.read_text()[-3000:] for p in sorted(home.glob("logs/**/*.log")))
    assert states.get("on_iris_deployed") == "success", (states, task_logs)
    (event,) = json.loads(out.read_text())
    assert event["uri"] == "modeldeploy://kserve/default/iris"
    extra: dict[str, Any] = event["extra"]
    assert (extra["action"], extra["version"], extra["serving_version"]) == ("deployed", "1", "1")
    assert extra["url"].endswith(":predict") and extra["flavor"] == "kserve"
    assert extra["run_id"].startswith("scheduled__")


def _wait_for_consumer(
    database: Path, scheduler: subprocess.Popen[bytes], timeout: float
) -> dict[str, str]:
    """DAG id -> state of its latest run, once the consumer's run ended (or the time is up)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline and scheduler.poll() is None:
        with sqlite3.connect(database, timeout=30) as db:
            rows = db.execute("SELECT dag_id, state FROM dag_run ORDER BY id").fetchall()
        states = {dag_id: state for dag_id, state in rows}
        if states.get("on_iris_deployed") in ("success", "failed"):
            return states
        if states.get("deploy_iris") == "failed":
            return states
        time.sleep(1)  # the scheduler's database is the only place the runs show up
    return states
