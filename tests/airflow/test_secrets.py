"""A password in the connection's tracking URI never reaches the task log or XCom, even when
MLflow's own error text (which quotes the full URL) is what made the task fail."""

from __future__ import annotations

import json
import secrets
import socket
from typing import Any

import pytest

SECRET_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator


@dag(dag_id="secret_canary", schedule=None)
def secret_canary():
    DeployModelOperator(
        task_id="deploy", modeldeploy_conn_id="md_canary", model_name="iris",
        model_uri="__URI__", metrics={"accuracy": 0.99}, gate_rules="accuracy>=0.5",
        champion_metric="accuracy", timeout=20,
    )


secret_canary()
"""


def test_a_password_in_the_tracking_uri_stays_out_of_task_logs_and_xcom(
    run_dag: Any,
    set_connection: Any,
    tmp_path: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = "canary" + secrets.token_hex(8)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    set_connection(
        "md_canary",
        "modeldeploy_mlflow",
        extra={
            "home": str(tmp_path / "home"),
            "tracking_uri": f"http://deployer:{canary}@127.0.0.1:{port}",
        },
    )

    result = run_dag(SECRET_DAG.replace("__URI__", str(tmp_path / "no-model")))

    assert result.states == {"deploy": "failed"}
    captured = capfd.readouterr()
    output = captured.out + captured.err + caplog.text
    # the task failed for the right reason, and said where: with the password hidden
    assert "look up the champion of model iris" in output
    assert f"deployer:***@127.0.0.1:{port}" in output
    assert canary not in output
    assert canary not in json.dumps(list(result.xcoms.values()), default=str)


def test_secrets_the_engine_learns_are_masked_by_airflow_too() -> None:
    """Airflow masks task-log lines of every library (MLflow's, urllib3's) with its own
    secrets masker; the provider hands it each secret the engine learns. (`dag.test()`
    prints without masking, so the masker itself is asked.)"""
    import modeldeploy_provider  # noqa: F401 - registers the sink
    from airflow.sdk.log import _secrets_masker
    from modeldeploy.deployer import DeployerSettings

    canary = "canary" + secrets.token_hex(8)

    class Settings(DeployerSettings):
        tracking_uri: str

    Settings(tracking_uri=f"http://deployer:{canary}@127.0.0.1:9")
    masked = _secrets_masker().redact(f"API request to http://deployer:{canary}@h failed")
    assert canary not in str(masked) and "API request to" in str(masked)


def test_secrets_shorter_than_airflow_masks_are_not_handed_over(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow skips secrets under `[logging] min_length_masked_secret` (5) with a warning in
    every task log; the provider keeps those to the engine's own redaction instead."""
    from airflow.sdk._shared.secrets_masker import secrets_masker
    from airflow.sdk.log import _secrets_masker
    from modeldeploy.redaction import redact, register_secret
    from modeldeploy_provider import mask_in_task_logs

    # it warns once a process, on its own logger
    monkeypatch.setattr(secrets_masker.SecretsMasker, "_has_warned_short_secret", False)
    short, long = "pw" + secrets.token_hex(1), "pw" + secrets.token_hex(8)  # 4 and 18 chars
    secrets_masker.log.addHandler(caplog.handler)
    try:
        mask_in_task_logs(short)
        mask_in_task_logs(long)
    finally:
        secrets_masker.log.removeHandler(caplog.handler)
    assert "too short" not in caplog.text
    assert long not in str(_secrets_masker().redact(f"x {long} y"))
    register_secret(short)
    assert short not in redact(f"token={short}")
