"""The local flavor's home stays usable, safe and small: damaged records are skipped and
named, a dead supervisor is reported (and restarted on request), bad hosts and unsafe homes
are refused before anything is written, and unused model copies and logs do not pile up."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.flavors.mlflow.records import LOG, RECORD, RotatingLog, live_daemon_pid
from modeldeploy.status import ServiceState

from tests.conftest import SavedModels
from tests.mlflow_flavor.records import write_stopped_server
from tests.mlflow_flavor.test_lifecycle import _rows


def _entries(home: Path) -> list[str]:
    servers = home / "servers"
    return sorted(p.name for p in servers.iterdir()) if servers.exists() else []


def test_damaged_records_are_skipped_and_named_while_the_rest_keeps_working(
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    md_home: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    serving = mlflow_deployer.deploy_model(
        {"model_name": "iris", "model_uri": str(saved_models.first)}, timeout=120
    )
    servers = md_home / "servers"
    (servers / "not-json").mkdir()
    (servers / "not-json" / RECORD).write_text("{half a record")
    no_config = servers / "no-config"
    no_config.mkdir()
    (no_config / RECORD).write_text(json.dumps({"uuid": "x", "generation": 1}))
    elsewhere = write_stopped_server(tmp_path / "elsewhere")
    (servers / elsewhere).symlink_to(tmp_path / "elsewhere" / "servers" / elsewhere)

    with caplog.at_level(logging.WARNING, logger="modeldeploy"):
        found = mlflow_deployer.find_model_server()
    assert [s.uuid for s in found] == [serving.uuid]
    damaged = mlflow_deployer.damaged
    assert "is not valid JSON" in damaged[str(servers / "not-json" / RECORD)]
    assert "has no 'config' field" in damaged[str(no_config / RECORD)]
    assert "symbolic link, which is not followed" in damaged[str(servers / elsewhere / RECORD)]
    assert str(servers / "not-json" / RECORD) in caplog.text

    # Deploying goes on: in place, and the model copy of generation 1 is gone once unused.
    result = mlflow_deployer.deploy(
        {"model_name": "iris", "model_uri": str(saved_models.second)}, timeout=120
    )
    assert result.action == "updated" and result.server.predict(_rows(saved_models)) == [2, 2, 2]
    mlflow_deployer.find_model_server()
    assert sorted(p.name for p in (serving.dir / "models").iterdir()) == ["2"]
    assert not [name for name in _entries(md_home) if name.startswith(".staging-")]


def test_a_killed_supervisor_is_failed_with_its_log_until_start_recovers_it(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels
) -> None:
    server = mlflow_deployer.deploy_model(
        {"model_name": "iris", "model_uri": str(saved_models.first)}, timeout=120
    )
    pid = live_daemon_pid(server.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)

    for _ in range(2):  # the second read must not mistake it for an ordinary stop
        status = mlflow_deployer.get_model_server(server.uuid).status
        assert status.state == ServiceState.ERROR
        assert "exited without stopping cleanly" in (status.last_error or "")
        assert "generation 1 is serving" in (status.last_error or "")  # a line of its log

    started = mlflow_deployer.start_model_server(server.uuid, timeout=120)
    assert started.is_running and started.predict(_rows(saved_models)) == [0, 0, 0]


def test_restart_policy_on_failure_restarts_a_killed_supervisor(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels
) -> None:
    config = {"model_name": "iris", "model_uri": str(saved_models.first)}
    server = mlflow_deployer.deploy_model({**config, "restart_policy": "on-failure"}, timeout=120)
    pid = live_daemon_pid(server.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        again = live_daemon_pid(server.dir)
        if again not in (None, pid) and server.check_status().state == ServiceState.ACTIVE:
            break
        time.sleep(0.1)
    assert live_daemon_pid(server.dir) not in (None, pid)
    assert server.check_status().state == ServiceState.ACTIVE
    assert server.predict(_rows(saved_models)) == [0, 0, 0]
    log = (server.dir / LOG).read_text()
    assert "supervisor ended with signal 9; restarting it" in log

    # A forced stop takes the keeper down too: nothing comes back.
    mlflow_deployer.stop_model_server(server.uuid, timeout=30, force=True)
    assert server.check_status().state == ServiceState.INACTIVE
    assert live_daemon_pid(server.dir) is None


def test_an_unassignable_host_is_refused_before_anything_is_written(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    for host in ("192.0.2.1", "no-such-host.invalid"):
        with pytest.raises(InvalidConfigError, match=f"cannot listen on host '{host}'"):
            mlflow_deployer.deploy(
                {"model_name": "iris", "model_uri": str(saved_models.first), "host": host}
            )
    assert _entries(md_home) == []


def test_unsafe_homes_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    home.mkdir()
    home.chmod(0o777)
    with pytest.raises(InvalidConfigError, match="writable by its group or by everyone"):
        MLflowModelDeployer({"home": home}).find_model_server()
    with pytest.raises(InvalidConfigError, match=r"chmod go-w"):
        MLflowModelDeployer({"home": home}).deploy({"model_name": "m", "model_uri": "/m"})
    assert list(home.iterdir()) == []  # refused before anything was written
    home.chmod(0o700)
    (tmp_path / "real-servers").mkdir(mode=0o700)
    (home / "servers").symlink_to(tmp_path / "real-servers")
    with pytest.raises(InvalidConfigError, match="symbolic link, which is not followed"):
        MLflowModelDeployer({"home": home}).find_model_server()


def test_staging_copies_are_removed_once_unused(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    config = mlflow_deployer.parse_config(
        {"model_name": "iris", "model_uri": str(saved_models.first)}
    )
    mlflow_deployer.validate_deploy(config)  # stages a copy, as a deploy does first
    assert [n for n in _entries(md_home) if n.startswith(".staging-")]
    mlflow_deployer.close()  # no deploy consumed it
    assert not [n for n in _entries(md_home) if n.startswith(".staging-")]

    dead = md_home / "servers" / ".staging-999999999-left"  # its process is gone
    dead.mkdir()
    shutil.copytree(saved_models.first, dead / "model")
    mlflow_deployer.find_model_server()
    assert not dead.exists()


def test_the_log_rotates_at_its_size_bound(tmp_path: Path) -> None:
    path = tmp_path / LOG
    log = RotatingLog(path, max_bytes=1000)
    for i in range(100):
        log.write(f"line {i:03d} " + "x" * 40 + "\n")
    assert path.stat().st_size <= 1000
    assert (tmp_path / f"{LOG}.1").stat().st_size <= 1000
    assert path.read_text().splitlines()[-1].startswith("line 099")
    assert not (tmp_path / f"{LOG}.2").exists()
