"""Configuration of the local MLflow flavor."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings
from modeldeploy.flavors.mlflow.records import DEFAULT_LOG_MAX_BYTES, DEFAULT_REQUEST_TIMEOUT


class MLflowServerConfig(ServiceConfig):
    """A model served by `mlflow.pyfunc.scoring_server` on this machine."""

    flavor: ClassVar[str] = "mlflow"

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="TCP port; chosen free when unset and kept across in-place updates.",
    )
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    request_timeout: int = Field(
        default=DEFAULT_REQUEST_TIMEOUT,
        ge=1,
        description="Seconds a single scoring request may take.",
    )
    compare_percent: int = Field(
        default=10,
        ge=0,
        le=100,
        description=(
            "While a rollout splits traffic, this percent of each variant's requests is "
            "also sent to the other variant after the client has its answer, so agreement "
            "is measured on live requests; 0 turns it off."
        ),
    )
    restart_policy: Literal["never", "on-failure"] = Field(
        default="never",
        description=(
            "on-failure: a keeper process restarts the server's supervisor, with backoff, "
            "whenever it dies (killed, crashed); never: a dead supervisor is reported as "
            "failed until `start` or the next deploy."
        ),
    )
    log_max_bytes: int = Field(
        default=DEFAULT_LOG_MAX_BYTES,
        ge=64 * 1024,
        description="server.log is rotated to server.log.1 (one old copy) beyond this size.",
    )

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"host {value!r} is not an interface address such as 127.0.0.1")
        return value


class MLflowDeployerSettings(DeployerSettings):
    """Where servers are recorded; `tracking_uri` (inherited, secret) also resolves model URIs
    and defaults to SQLite in `home`."""

    home: Path | None = Field(
        default=None,
        title="State directory",
        description="Where the local model servers keep their config, pid and log. Empty: "
        "$MODELDEPLOY_HOME, else ~/.modeldeploy.",
    )
