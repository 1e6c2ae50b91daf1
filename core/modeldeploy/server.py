"""A model server: one long-running serving deployment of one model (ZenML's "service")."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import DeploymentTimeoutError, PlatformError
from modeldeploy.status import ServiceState, ServiceStatus
from modeldeploy.waiting import Deadline

TransitionCallback = Callable[["ModelServer", ServiceStatus], None]


class ModelServerInfo(BaseModel):
    """JSON-ready description of a server: CLI `--json`, Airflow XCom, Prefect results."""

    model_config = ConfigDict(protected_namespaces=())

    uuid: str
    flavor: str
    model_name: str
    model_version: str | None
    model_uri: str
    model_type: str | None
    pipeline_name: str
    step_name: str
    run_id: str | None
    state: ServiceState
    prediction_url: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    config: dict[str, Any]


class ModelServer(ABC):
    """Identity, config and last known status of one server, plus the verbs on it.

    Verbs write to the platform and return; `wait_until_ready` does the waiting, so the
    engine can share one deadline across the steps of a rollout.
    """

    flavor: ClassVar[str] = ""
    poll_interval: ClassVar[float] = 0.05

    def __init__(self, uuid: UUID, config: ServiceConfig, status: ServiceStatus) -> None:
        self.uuid = uuid
        self.config = config
        self.status = status

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(uuid={self.uuid}, model={self.config.model_name!r}, "
            f"version={self.config.model_version!r}, state={self.status.state.value})"
        )

    @property
    def is_running(self) -> bool:
        return self.status.state == ServiceState.ACTIVE

    @property
    def is_failed(self) -> bool:
        return self.status.state == ServiceState.ERROR

    @property
    @abstractmethod
    def prediction_url(self) -> str | None:
        """Where `predict` sends requests; stays the same across in-place updates."""

    @abstractmethod
    def check_status(self) -> ServiceStatus:
        """Ask the platform, store the answer in `self.status` and return it."""

    @abstractmethod
    def update(self, config: ServiceConfig) -> None:
        """Write a new config in place (same identity and URL); bumps `status.generation`."""

    @abstractmethod
    def start(self) -> None:
        """Ask the platform to run the server again; returns without waiting."""

    @abstractmethod
    def stop(self, force: bool = False) -> None:
        """Ask the platform to stop serving but keep the record; returns without waiting."""

    @abstractmethod
    def delete(self, force: bool = False) -> None:
        """Remove the server and everything it owns; returns without waiting."""

    @abstractmethod
    def is_deleted(self) -> bool:
        """True once nothing of the server is left on the platform."""

    @abstractmethod
    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        """Lines of the server's log, oldest first; `follow` keeps yielding new lines."""

    @abstractmethod
    def predict(self, data: Any) -> Any:
        """Send `data` to the server in its protocol and return the predictions."""

    def wait_for_state(
        self,
        target: ServiceState,
        deadline: Deadline,
        on_transition: TransitionCallback | None = None,
    ) -> ServiceStatus:
        """Wait until the platform reports `target` for the generation we wrote.

        A terminal error is raised at once with the platform's reason. The default polls
        `check_status`; flavors with a watch API feed `WaitProgress.judge` from events.
        """
        progress = WaitProgress(self, target, on_transition)
        while True:
            status = progress.judge(self.check_status())
            if status is not None:
                return status
            if deadline.expired:
                raise progress.timeout(deadline)
            self._await_change(deadline)

    async def wait_for_state_async(
        self,
        target: ServiceState,
        deadline: Deadline,
        on_transition: TransitionCallback | None = None,
    ) -> ServiceStatus:
        """`wait_for_state` for an event loop (the Airflow triggerer): no thread is held
        while waiting. The default polls `check_status_async`; watching flavors override."""
        from modeldeploy.waiting_async import poll_state

        return await poll_state(self, target, deadline, on_transition)

    async def check_status_async(self) -> ServiceStatus:
        """`check_status` without blocking the loop; the default borrows a pool thread for
        the one short probe only. Flavors with an async client override it."""
        import asyncio

        return await asyncio.to_thread(self.check_status)

    def where(self) -> str:
        """Where the server lives, for messages (a namespace and name, a port...)."""
        return self.config.model_name

    def _await_change(self, deadline: Deadline) -> None:
        """Block until the status may have changed; the default polls briefly."""
        time.sleep(min(self.poll_interval, deadline.remaining()) or 0.001)

    def wait_until_ready(
        self, deadline: Deadline, on_transition: TransitionCallback | None = None
    ) -> ServiceStatus:
        return self.wait_for_state(ServiceState.ACTIVE, deadline, on_transition)

    def wait_until_deleted(self, deadline: Deadline) -> None:
        while not self.is_deleted():
            if deadline.expired:
                raise DeploymentTimeoutError(
                    f"{self.flavor} model server {self.uuid} was not gone after "
                    f"{deadline.timeout:g}s; delete it again with force, or check the platform"
                )
            self._await_change(deadline)

    def info(self) -> ModelServerInfo:
        c = self.config
        return ModelServerInfo(
            uuid=str(self.uuid),
            flavor=self.flavor,
            model_name=c.model_name,
            model_version=c.model_version,
            model_uri=c.model_uri,
            model_type=c.model_type,
            pipeline_name=c.pipeline_name,
            step_name=c.step_name,
            run_id=c.run_id,
            state=self.status.state,
            prediction_url=self.prediction_url,
            last_error=self.status.last_error,
            created_at=self.status.created_at,
            updated_at=self.status.updated_at,
            config=c.to_record(),
        )


class WaitProgress:
    """The judging half of a wait, shared by polling and watching flavors.

    Reports each change of state (and of whether it is the generation we wrote) to the
    callback, says when the target is reached, raises a current terminal failure at once.
    """

    def __init__(
        self,
        server: ModelServer,
        target: ServiceState,
        on_transition: TransitionCallback | None = None,
    ) -> None:
        self.server = server
        self.target = target
        self.on_transition = on_transition
        self._seen: tuple[ServiceState, bool] | None = None

    def judge(self, status: ServiceStatus) -> ServiceStatus | None:
        if (status.state, status.is_current) != self._seen:
            self._seen = (status.state, status.is_current)
            if self.on_transition is not None:
                self.on_transition(self.server, status)
        if status.is_current and status.state == self.target:
            return status
        if status.is_current and status.state == ServiceState.ERROR:
            s = self.server
            raise PlatformError(
                f"{s.flavor} model server {s.uuid} ({s.where()}) failed: "
                f"{status.last_error or 'no reason given by the platform'}"
            )
        return None

    def timeout(self, deadline: Deadline) -> DeploymentTimeoutError:
        s, status = self.server, self.server.status
        return DeploymentTimeoutError(
            f"{s.flavor} model server {s.uuid} ({s.where()}) is still {status.state.value} "
            f"after {deadline.timeout:g}s (wanted {self.target.value}; generation "
            f"{status.generation}, observed {status.observed_generation}); last error: "
            f"{status.last_error or 'none'}. Check its logs with "
            f"`modeldeploy models logs {s.uuid}` or raise the timeout."
        )
