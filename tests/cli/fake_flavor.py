"""An in-memory flavor, standing in for a third-party one in the in-process CLI tests.

Its settings declare Kubernetes-like fields only, so the tests can check that the CLI
passes exactly the settings a flavor declares. Servers move through the real states one
`check_status` at a time, so the engine's waits report each transition.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings, ModelDeployer, ServerQuery
from modeldeploy.server import ModelServer
from modeldeploy.status import ServiceState, ServiceStatus


class FakeSettings(DeployerSettings):
    namespace: str = "default"
    context: str | None = None
    kubeconfig_path: str | None = None
    in_cluster: bool = False
    ingress_base_url: str | None = None
    replicas_cap: int = 1


class FakeConfig(ServiceConfig):
    flavor: ClassVar[str] = "fake"
    replicas: int = 1


_STEPS = {
    ServiceState.PENDING_STARTUP: ServiceState.ACTIVE,
    ServiceState.PENDING_SHUTDOWN: ServiceState.INACTIVE,
}


class FakeServer(ModelServer):
    flavor: ClassVar[str] = "fake"
    poll_interval: ClassVar[float] = 0.001

    def __init__(self, deployer: FakeDeployer, config: FakeConfig, created: datetime) -> None:
        super().__init__(
            uuid_lib.uuid4(),
            config,
            ServiceStatus(state=ServiceState.PENDING_STARTUP, created_at=created),
        )
        self.deployer = deployer
        self.log_lines = [f"line {i}" for i in range(1, 6)]
        self.deleted = False
        self._settle = 1  # checks a pending state lasts, so waits see every transition

    @property
    def prediction_url(self) -> str | None:
        ns = self.deployer.settings.namespace
        return f"http://fake.invalid/{ns}/{self.config.model_name}/predict"

    def check_status(self) -> ServiceStatus:
        if self._settle > 0:
            self._settle -= 1
        else:
            self.status.state = _STEPS.get(self.status.state, self.status.state)
        return self.status

    def update(self, config: ServiceConfig) -> None:
        self.config = config

    def start(self) -> None:
        if self.status.state != ServiceState.ACTIVE:
            self.status.state = ServiceState.PENDING_STARTUP
            self._settle = 1

    def stop(self, force: bool = False) -> None:
        self.status.state = ServiceState.PENDING_SHUTDOWN
        self._settle = 1

    def delete(self, force: bool = False) -> None:
        self.deleted = True
        self.deployer.servers.remove(self)

    def is_deleted(self) -> bool:
        return self.deleted

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        lines = self.log_lines[-tail:] if tail else [] if tail == 0 else self.log_lines
        yield from lines

    def predict(self, data: Any) -> Any:
        return [0 for _ in data]


class FakeDeployer(ModelDeployer):
    flavor: ClassVar[str] = "fake"
    config_class: ClassVar[type[ServiceConfig]] = FakeConfig
    settings_class = FakeSettings
    settings: FakeSettings
    servers: ClassVar[list[FakeServer]] = []
    created: ClassVar[list[FakeDeployer]] = []

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        FakeDeployer.created.append(self)

    def _list_servers(self, query: ServerQuery) -> Iterable[ModelServer]:
        for server in self.servers:  # seen through this deployer's settings (namespace)
            server.deployer = self
        return list(self.servers)

    def _create_server(self, config: ServiceConfig) -> ModelServer:
        created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=len(self.servers))
        server = FakeServer(self, FakeConfig.model_validate(config.model_dump()), created)
        self.servers.append(server)
        return server


def reset() -> None:
    FakeDeployer.servers.clear()
    FakeDeployer.created.clear()


def add_server(**config: Any) -> FakeServer:
    """A running server in the fake platform."""
    deployer = FakeDeployer()
    FakeDeployer.created.clear()
    defaults = {"model_name": "iris", "model_uri": "s3://bucket/iris", "model_version": "1"}
    server = deployer._create_server(FakeConfig(**{**defaults, **config}))
    server.status.state = ServiceState.ACTIVE
    return server  # type: ignore[return-value]
