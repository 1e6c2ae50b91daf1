"""Bad input is refused before any change; crashes and stale records converge."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from modeldeploy.errors import InvalidConfigError, PlatformError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.flavors.mlflow.records import DAEMON, RECORD, daemon_identity, live_daemon_pid
from modeldeploy.status import ServiceState

from tests.conftest import SavedModels
from tests.mlflow_flavor.test_lifecycle import _rows, _scoring_pids


def _snapshot(home: Path) -> list[str]:
    servers = home / "servers"
    return sorted(p.name for p in servers.iterdir()) if servers.exists() else []


@pytest.fixture
def serving(mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels):
    """One healthy server that every bad input must leave untouched."""
    return mlflow_deployer.deploy_model(
        {"model_name": "iris", "model_uri": str(saved_models.first)}, timeout=120
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_uri": "/does/not/exist"}, "does not exist"),
        ({"model_uri": "runs:/0123456789abcdef/model"}, "cannot fetch model"),
        ({"model_name": "bad name!"}, "model_name 'bad name!' is not valid"),
    ],
)
def test_bad_input_is_refused_and_the_serving_model_is_untouched(
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    serving,
    md_home: Path,
    change: dict,
    message: str,
) -> None:
    before = (_snapshot(md_home), (serving.dir / RECORD).read_text())
    config = {"model_name": "iris", "model_uri": str(saved_models.second), **change}
    with pytest.raises(InvalidConfigError, match=message):
        mlflow_deployer.deploy(config, timeout=60)
    assert (_snapshot(md_home), (serving.dir / RECORD).read_text()) == before
    assert serving.check_status().state == ServiceState.ACTIVE
    assert serving.predict(_rows(saved_models)) == [0, 0, 0]


def test_not_a_model_and_negative_timeout_and_busy_port_are_refused(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    with pytest.raises(InvalidConfigError, match="not an MLflow model"):
        mlflow_deployer.deploy({"model_name": "m", "model_uri": str(saved_models.not_a_model)})
    with pytest.raises(InvalidConfigError, match="timeout must be zero or more"):
        mlflow_deployer.deploy(
            {"model_name": "m", "model_uri": str(saved_models.first)}, timeout=-5
        )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InvalidConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            mlflow_deployer.deploy(
                {"model_name": "m", "model_uri": str(saved_models.first), "port": port}
            )
    assert mlflow_deployer.find_model_server() == []


def test_a_model_that_fails_to_load_leaves_the_previous_one_serving(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, serving
) -> None:
    url = serving.prediction_url
    with pytest.raises(PlatformError, match="scoring server exited with code"):
        mlflow_deployer.deploy(
            {"model_name": "iris", "model_uri": str(saved_models.broken)}, timeout=120
        )
    (server,) = mlflow_deployer.find_model_server()
    assert server.uuid == serving.uuid and server.prediction_url == url
    assert server.config.model_uri == str(saved_models.first)
    assert server.check_status().state == ServiceState.ACTIVE and server.status.is_current
    assert server.predict(_rows(saved_models)) == [0, 0, 0]


def test_a_new_server_that_fails_to_load_is_removed(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    with pytest.raises(PlatformError, match="exited with code"):
        mlflow_deployer.deploy(
            {"model_name": "iris", "model_uri": str(saved_models.broken)}, timeout=120
        )
    assert mlflow_deployer.find_model_server() == []
    assert [p for p in _snapshot(md_home) if not p.startswith(".")] == []


def test_killed_daemon_is_reconciled_and_the_next_deploy_converges(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, serving
) -> None:
    pid = live_daemon_pid(serving.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # The scoring server gets SIGTERM from the kernel when its supervisor dies.
    deadline = time.monotonic() + 30
    while _scoring_pids(serving.dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _scoring_pids(serving.dir) == []
    status = serving.check_status()
    assert status.state == ServiceState.ERROR  # killed is failed, not stopped
    assert "exited without stopping cleanly" in (status.last_error or "")
    assert not (serving.dir / DAEMON).exists()

    result = mlflow_deployer.deploy(
        {"model_name": "iris", "model_uri": str(saved_models.second)}, timeout=120
    )
    assert result.action == "updated" and result.server.uuid == serving.uuid
    assert result.server.prediction_url == serving.prediction_url
    assert [s.is_running for s in mlflow_deployer.find_model_server()] == [True]
    assert result.server.predict(_rows(saved_models)) == [2, 2, 2]


def test_a_reused_pid_is_never_signalled(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, serving
) -> None:
    mlflow_deployer.stop_model_server(serving.uuid, timeout=30)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # A stale pid file that now points at an unrelated program.
        (serving.dir / DAEMON).write_text(json.dumps(daemon_identity(stranger.pid)))
        assert live_daemon_pid(serving.dir) is None
        status = serving.check_status()
        assert status.state == ServiceState.INACTIVE
        assert not (serving.dir / DAEMON).exists()
        mlflow_deployer.delete_model_server(serving.uuid, timeout=30, force=True)
        assert stranger.poll() is None, "an unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_deploying_process_killed_half_way_then_next_deploy_converges(
    md_home: Path, saved_models: SavedModels
) -> None:
    script = (
        "from modeldeploy import create_deployer;"
        f"d = create_deployer('mlflow', {{'home': {str(md_home)!r}}});"
        f"d.deploy_model({{'model_name': 'iris', 'model_uri': {str(saved_models.first)!r}}},"
        " timeout=120)"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    servers = md_home / "servers"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(servers.glob("*/record.json")):
        time.sleep(0.02)
    child.kill()  # half way: the record exists, the server is not ready yet
    child.wait()
    assert list(servers.glob("*/record.json")), "the deploy never got as far as a record"

    deployer = MLflowModelDeployer({"home": md_home})
    result = deployer.deploy(
        {"model_name": "iris", "model_uri": str(saved_models.second)}, timeout=120
    )
    servers_now = deployer.find_model_server()
    assert [s.uuid for s in servers_now] == [result.server.uuid]
    assert servers_now[0].is_running
    assert result.server.predict(_rows(saved_models)) == [2, 2, 2]
    assert len(list(servers.glob("*/record.json"))) == 1
