"""The local MLflow flavor end to end: real scoring servers on loopback, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.flavors.mlflow.records import DAEMON, live_daemon_pid, process_cmdline
from modeldeploy.status import ServiceState

from tests.conftest import SavedModels


def _rows(models: SavedModels) -> dict:
    return {"dataframe_split": {"columns": models.columns, "data": models.sample_rows}}


def _scoring_pids(server_dir: Path) -> list[int]:
    marker = f"MODELDEPLOY_SERVER_DIR={server_dir}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_deploy_predict_update_in_place_and_delete(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    transitions: list[str] = []
    config = {"model_name": "iris", "model_uri": str(saved_models.first), "pipeline_name": "p"}
    created = mlflow_deployer.deploy(
        config, timeout=120, on_transition=lambda _s, st: transitions.append(st.state.value)
    )
    server = created.server
    assert created.action == "created"
    assert transitions[-1] == "active" and "pending_startup" in transitions
    url = server.prediction_url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/invocations")
    assert server.is_running and not server.is_failed
    assert server.predict(_rows(saved_models)) == [0, 0, 0]
    raw = requests.post(url, json=_rows(saved_models), timeout=10)
    assert raw.status_code == 200 and raw.json() == {"predictions": [0, 0, 0]}

    # A new process finds the daemon again from the state directory alone.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json,sys; from modeldeploy import create_deployer;"
            f"d = create_deployer('mlflow', {{'home': {str(md_home)!r}}});"
            "print(json.dumps([s.info().model_dump(mode='json') for s in d.find_model_server("
            "running=True, model_name='iris')]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = json.loads(found.stdout)
    assert [(s["uuid"], s["prediction_url"], s["state"]) for s in listed] == [
        (str(server.uuid), url, "active")
    ]

    updated = mlflow_deployer.deploy({**config, "model_uri": str(saved_models.second)}, timeout=120)
    assert updated.action == "updated"
    assert updated.server.uuid == server.uuid
    assert updated.server.prediction_url == url
    assert updated.server.predict(_rows(saved_models)) == [2, 2, 2]
    assert len(mlflow_deployer.find_model_server()) == 1
    assert len(_scoring_pids(server.dir)) >= 1

    mlflow_deployer.delete_model_server(server.uuid, timeout=30)
    assert mlflow_deployer.find_model_server() == []
    assert not server.dir.exists()
    assert _scoring_pids(server.dir) == []
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=_rows(saved_models), timeout=5)


def test_stop_start_keep_the_url_and_logs_tail_and_follow(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels
) -> None:
    server = mlflow_deployer.deploy_model(
        {"model_name": "iris", "model_uri": str(saved_models.first)}, timeout=120
    )
    url = server.prediction_url
    stopped = mlflow_deployer.stop_model_server(server.uuid, timeout=30)
    assert stopped.status.state == ServiceState.INACTIVE
    assert live_daemon_pid(server.dir) is None
    assert _scoring_pids(server.dir) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(url.replace("/invocations", "/ping"), timeout=5)

    started = mlflow_deployer.start_model_server(server.uuid, timeout=120)
    assert started.is_running and started.prediction_url == url
    assert started.predict(_rows(saved_models)) == [0, 0, 0]

    tail = list(mlflow_deployer.get_model_server_logs(server.uuid, tail=3))
    assert len(tail) == 3
    everything = list(mlflow_deployer.get_model_server_logs(server.uuid))
    assert everything[-3:] == tail
    assert any("generation 1 is serving" in line for line in everything)

    # Follow: a line appended after we started reading shows up without polling the test.
    follower = mlflow_deployer.get_model_server_logs(server.uuid, follow=True, tail=0)
    seen = threading.Event()

    def read() -> None:
        for line in follower:
            if '"POST /invocations' in line:
                seen.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started.predict(_rows(saved_models))
    assert seen.wait(20)


def test_daemon_outlives_the_process_that_started_it(
    md_home: Path, tracking_uri: str, saved_models: SavedModels
) -> None:
    script = (
        "from modeldeploy import create_deployer;"
        f"d = create_deployer('mlflow', {{'home': {str(md_home)!r}}});"
        f"s = d.deploy_model({{'model_name': 'iris', 'model_uri': {str(saved_models.first)!r}}},"
        " timeout=120); print(s.uuid)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    deployer = MLflowModelDeployer({"home": md_home})
    (server,) = deployer.find_model_server(running=True)
    assert str(server.uuid) == out.stdout.strip()
    pid = live_daemon_pid(server.dir)
    assert pid is not None and pid != os.getpid()
    assert "modeldeploy.flavors.mlflow.supervisor" in process_cmdline(pid)
    assert json.loads((server.dir / DAEMON).read_text())["pid"] == pid
    assert server.predict(_rows(saved_models)) == [0, 0, 0]


def test_an_update_put_back_before_it_served_restarts_nothing(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels
) -> None:
    """What reconciliation does after a rollout died between its write and readiness: the
    record goes back to the model still serving, which keeps serving (same process)."""
    from modeldeploy.flavors.mlflow.records import STATUS, read_json
    from modeldeploy.waiting import Deadline

    config = {"model_name": "iris-back", "model_uri": str(saved_models.first)}
    server = mlflow_deployer.deploy(config, timeout=120).server
    serving_pid = read_json(server.dir / STATUS)["child_pid"]

    server.update({**config, "model_uri": str(saved_models.second)})  # loads for seconds
    server.update(config)  # put back at once
    server.wait_until_ready(Deadline(120))

    status = read_json(server.dir / STATUS)
    assert status["observed_generation"] == 3
    assert status["child_pid"] == serving_pid
    assert server.predict(_rows(saved_models)) == [0, 0, 0]
