"""The default async wait (`poll_state`) for flavors without an async client: a pure unit
test on a scripted server, since no thread may be held between its probes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from modeldeploy.config import ServiceConfig
from modeldeploy.errors import DeploymentTimeoutError, PlatformError
from modeldeploy.server import ModelServer
from modeldeploy.status import ServiceState, ServiceStatus
from modeldeploy.waiting import Deadline


class ScriptedServer(ModelServer):
    """Reports the scripted states in turn, then the last one forever."""

    flavor = "scripted"
    poll_interval = 0.001

    def __init__(self, *states: ServiceState, error: str | None = None) -> None:
        config = ServiceConfig(model_name="m", model_uri="models:/m/1")
        super().__init__(uuid4(), config, ServiceStatus())
        self.states = list(states)
        self.error = error

    @property
    def prediction_url(self) -> str | None:
        return None

    def check_status(self) -> ServiceStatus:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        error = self.error if state == ServiceState.ERROR else None
        self.status = ServiceStatus(state=state, last_error=error, observed_generation=0)
        return self.status

    def update(self, config: ServiceConfig) -> None: ...
    def start(self) -> None: ...
    def stop(self, force: bool = False) -> None: ...
    def delete(self, force: bool = False) -> None: ...
    def is_deleted(self) -> bool:
        return False

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        return iter(())

    def predict(self, data: Any) -> Any:
        return data


def wait(server: ScriptedServer, timeout: float = 10) -> ServiceStatus:
    seen: list[ServiceState] = []

    async def run() -> ServiceStatus:
        return await server.wait_for_state_async(
            ServiceState.ACTIVE, Deadline(timeout), lambda _s, st: seen.append(st.state)
        )

    status = asyncio.run(run())
    assert seen[-1] == status.state
    return status


def test_polls_until_the_target_and_reports_each_change() -> None:
    pending = ServiceState.PENDING_STARTUP
    server = ScriptedServer(pending, pending, ServiceState.ACTIVE)
    assert wait(server).state == ServiceState.ACTIVE
    assert server.states == [ServiceState.ACTIVE]  # every scripted probe was made


def test_a_terminal_failure_is_raised_at_once_with_the_reason() -> None:
    server = ScriptedServer(ServiceState.PENDING_STARTUP, ServiceState.ERROR, error="OOMKilled")
    with pytest.raises(PlatformError, match="OOMKilled"):
        wait(server)


def test_the_deadline_ends_the_wait() -> None:
    server = ScriptedServer(ServiceState.PENDING_STARTUP)
    with pytest.raises(DeploymentTimeoutError, match="still pending_startup"):
        wait(server, timeout=0.05)
