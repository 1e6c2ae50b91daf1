"""Secrets stay out of messages, logs and reprs; an unreachable registry fails the rollout
within its timeout, naming the URI with the password hidden, and is never "no champion"."""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Iterator

import pytest
from modeldeploy.errors import ModelDeployError, RegistryError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.gate import Gate
from modeldeploy.redaction import add_secret_sink, get_logger, redact, register_secret
from modeldeploy.registry import ModelRegistry
from modeldeploy.rollout import continuous_deploy

from tests.conftest import SavedModels


@pytest.fixture
def canary() -> str:
    return "canary" + secrets.token_hex(8)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections (the kernel does) but never answers: a hung tracking server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_redact_hides_userinfo_tokens_and_registered_values(canary: str) -> None:
    assert redact(f"postgresql://bob:{canary}@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert canary not in redact(f"https://{canary}@github.com/o/r.git")
    assert canary not in redact(f"http://h/api?name=m&access_token={canary}&x=1")
    assert "name=m" in redact(f"http://h/api?name=m&token={canary}")
    assert canary not in redact(f"Authorization: Bearer {canary}")
    other = "sek/ret" + canary
    register_secret(other)
    # Registered values go wherever they appear, also percent-encoded, as MLflow quotes them.
    encoded = other.replace("/", "%2F")
    assert redact(f"failed: {other} and {encoded}") == "failed: *** and ***"


def test_errors_logs_and_reprs_hide_passwords(
    canary: str, caplog: pytest.LogCaptureFixture, md_home
) -> None:
    uri = f"http://alice:{canary}@127.0.0.1:9"
    error = ModelDeployError(f"could not reach {uri}")
    assert canary not in str(error) and "alice:***@127.0.0.1:9" in str(error)
    deployer = MLflowModelDeployer({"home": md_home, "tracking_uri": uri})
    assert canary not in repr(deployer) and canary not in str(deployer.settings)
    assert canary not in repr(ModelRegistry(uri))
    with caplog.at_level(logging.DEBUG, logger="modeldeploy"):
        get_logger("modeldeploy").warning("talking to %s", uri)
        try:
            raise RuntimeError(f"MLflow said: API request to {uri}/api failed")
        except RuntimeError:
            get_logger("modeldeploy.kubernetes").exception("and it failed")
    assert "talking to http://alice:***@127.0.0.1:9" in caplog.text
    assert "MLflow said" in caplog.text and canary not in caplog.text


def test_secret_sinks_hear_every_secret_once(canary: str) -> None:
    heard: list[str] = []
    register_secret(canary)
    add_secret_sink(heard.append)
    register_secret(canary + "-later")
    register_secret(canary + "-later")
    assert canary in heard and heard.count(canary + "-later") == 1


def test_unreachable_registry_fails_the_rollout_and_is_not_no_champion(
    canary: str,
    closed_port: int,
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ModelRegistry(f"http://user:{canary}@127.0.0.1:{closed_port}")
    with pytest.raises(RegistryError) as failure:
        continuous_deploy(
            mlflow_deployer,
            {"model_name": "iris", "model_uri": str(saved_models.first)},
            {"accuracy": 0.99},
            Gate.from_rules("accuracy>=0.5", champion_metric="accuracy"),
            registry,
            timeout=20,
        )
    message = str(failure.value)
    assert f"user:***@127.0.0.1:{closed_port}" in message
    assert "look up the champion of model iris" in message
    assert canary not in message and canary not in caplog.text
    # The failed lookup stopped the rollout: no candidate was served as if unopposed.
    assert mlflow_deployer.find_model_server(model_name="iris") == []


def test_hung_registry_fails_the_rollout_within_its_timeout(
    canary: str,
    silent_port: int,
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
) -> None:
    """MLflow alone would retry 7 times with 120 s reads; the deadline bounds it instead.
    (bench/registry_timeout.py prints the time it takes beside the timeout.)"""
    registry = ModelRegistry(f"http://user:{canary}@127.0.0.1:{silent_port}")
    with pytest.raises(RegistryError) as failure:
        continuous_deploy(
            mlflow_deployer,
            {"model_name": "iris", "model_uri": str(saved_models.first)},
            {"accuracy": 0.99},
            None,
            registry,
            timeout=6,
        )
    message = str(failure.value)
    assert "timed out" in message.lower() or "timeout" in message.lower()
    assert canary not in message
    assert mlflow_deployer.find_model_server(model_name="iris") == []


def test_settings_register_nested_secrets(canary: str) -> None:
    from typing import Any

    from modeldeploy.deployer import DeployerSettings
    from pydantic import SecretStr

    class Settings(DeployerSettings):
        kubeconfig: dict[str, Any] | None = None
        key: SecretStr | None = None

    Settings(
        kubeconfig={"users": [{"name": "me", "user": {"token": canary + "-t"}}]},
        key=SecretStr(canary + "-k"),
    )
    assert redact(f"got {canary}-t and {canary}-k for me") == "got *** and *** for me"
