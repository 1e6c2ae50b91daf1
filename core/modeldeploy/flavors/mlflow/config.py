"""Configuration of the local MLflow flavor."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings


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
        default=60, ge=1, description="Seconds a single scoring request may take."
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
