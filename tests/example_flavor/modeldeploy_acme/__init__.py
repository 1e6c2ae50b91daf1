"""The `acme` flavor: an example of a flavor shipped in its own distribution.

The pretend Acme cloud is a directory: `ACCESS_KEY` holds the key its owner handed out,
and `servers/<uuid>.json` one record per model server. A real flavor would call its
platform's API where this one reads and writes those files.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid as uuid_lib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import ModelDeployer, ServerQuery
from modeldeploy.errors import InvalidConfigError
from modeldeploy.server import ModelServer
from modeldeploy.settings import DeployerSettings
from modeldeploy.status import ServiceState, ServiceStatus
from pydantic import Field, SecretStr


class AcmeSettings(DeployerSettings):
    """Where Acme servers live and how to sign in. Every surface builds its form from this:
    the names, `title` (the label), `description` (the help) and which fields are secret."""

    root: str = Field(
        title="Acme cloud directory",
        description="Directory of the Acme cloud this deployer manages.",
    )
    api_key: SecretStr = Field(
        title="API key",
        description="Access key of the Acme cloud; secret, so every surface masks it.",
    )
    region: Literal["eu", "us"] = Field(default="eu", description="Region to serve from.")
    replicas_cap: int = Field(
        default=2, ge=1, title="Replica cap", description="Most replicas a server may use."
    )
    autoscale: bool = Field(default=False, description="Let Acme add replicas under load.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels put on every server Acme runs."
    )


class AcmeConfig(ServiceConfig):
    """What to serve on Acme: the engine's fields plus Acme's own."""

    flavor: ClassVar[str] = "acme"
    replicas: int = Field(default=1, ge=1, description="Replicas of the server.")


class AcmeServer(ModelServer):
    flavor: ClassVar[str] = "acme"

    def __init__(self, deployer: AcmeModelDeployer, record: dict[str, Any]) -> None:
        super().__init__(
            uuid_lib.UUID(record["uuid"]),
            AcmeConfig.model_validate(record["config"]),
            ServiceStatus.model_validate(record["status"]),
        )
        self.deployer = deployer

    @property
    def path(self) -> Path:
        return self.deployer.servers_dir / f"{self.uuid}.json"

    def _save(self) -> None:
        record = {
            "uuid": str(self.uuid),
            "config": self.config.model_dump(mode="json"),
            "status": self.status.model_dump(mode="json"),
        }
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(record))
        os.replace(partial, self.path)

    def _set(self, state: ServiceState) -> None:
        self.status.state = state
        self._save()

    @property
    def prediction_url(self) -> str | None:
        region = self.deployer.settings.region
        return f"https://{region}.acme.invalid/models/{self.uuid}/predict"

    def check_status(self) -> ServiceStatus:
        if self.path.exists():  # Acme starts and stops servers at once
            self.status = ServiceStatus.model_validate(json.loads(self.path.read_text())["status"])
        return self.status

    def update(self, config: ServiceConfig) -> None:
        self.config = AcmeConfig.model_validate(config.model_dump())
        self._set(ServiceState.ACTIVE)

    def start(self) -> None:
        self._set(ServiceState.ACTIVE)

    def stop(self, force: bool = False) -> None:
        self._set(ServiceState.INACTIVE)

    def delete(self, force: bool = False) -> None:
        self.path.unlink(missing_ok=True)

    def is_deleted(self) -> bool:
        return not self.path.exists()

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        yield f"acme serves {self.config.model_name} in {self.deployer.settings.region}"

    def predict(self, data: Any) -> Any:
        return [0 for _ in data]


class AcmeModelDeployer(ModelDeployer):
    """Serves models on the Acme cloud (an example flavor)."""

    flavor: ClassVar[str] = "acme"
    config_class: ClassVar[type[ServiceConfig]] = AcmeConfig
    settings_class = AcmeSettings
    settings: AcmeSettings

    def __init__(self, settings: AcmeSettings | dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        root = Path(self.settings.root).expanduser()
        key_file = root / "ACCESS_KEY"
        expected = key_file.read_text().strip() if key_file.exists() else ""
        given = self.settings.api_key.get_secret_value()
        if not expected or not hmac.compare_digest(expected, given):
            # never say which key was given: it is secret
            raise InvalidConfigError(
                f"the Acme cloud at {root} refused the API key; check the api_key setting"
            )
        self.servers_dir = root / "servers"
        self.servers_dir.mkdir(exist_ok=True)

    def _list_servers(self, query: ServerQuery) -> Iterable[ModelServer]:
        records = (json.loads(p.read_text()) for p in self.servers_dir.glob("*.json"))
        return [AcmeServer(self, record) for record in records]

    def _create_server(self, config: ServiceConfig) -> ModelServer:
        record = {
            "uuid": str(uuid_lib.uuid4()),
            "config": config.model_dump(mode="json"),
            "status": ServiceStatus(state=ServiceState.ACTIVE).model_dump(mode="json"),
        }
        server = AcmeServer(self, record)
        server._save()
        return server


__all__ = ["AcmeConfig", "AcmeModelDeployer", "AcmeServer", "AcmeSettings"]
