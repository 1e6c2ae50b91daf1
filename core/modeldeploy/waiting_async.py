"""Waiting in an event loop: one deadline, no thread held per wait.

The Airflow triggerer runs every trigger in one loop; a wait that blocks (or holds a pool
thread) stalls the others. `wait_for_server` finds the server and awaits its state with the
flavor's async wait (Kubernetes flavors watch over async HTTP; others poll).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from uuid import UUID

from modeldeploy.status import ServiceState, ServiceStatus
from modeldeploy.waiting import Deadline

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.server import ModelServer, TransitionCallback


async def wait_for_server(
    deployer: ModelDeployer,
    uuid: UUID | str,
    target: ServiceState,
    deadline: Deadline,
    on_transition: TransitionCallback | None = None,
) -> ModelServer:
    """The server `uuid` once the platform reports `target` for the generation written.

    Raises like `ModelServer.wait_for_state`: `PlatformError` at once on a terminal
    failure, `DeploymentTimeoutError` when the deadline passes.
    """
    server = await deployer.get_model_server_async(uuid)
    await server.wait_for_state_async(target, deadline, on_transition)
    return server


async def poll_state(
    server: ModelServer,
    target: ServiceState,
    deadline: Deadline,
    on_transition: TransitionCallback | None = None,
) -> ServiceStatus:
    """The default async wait: probe, judge, sleep `poll_interval` in the loop."""
    from modeldeploy.server import WaitProgress

    progress = WaitProgress(server, target, on_transition)
    while True:
        status = progress.judge(await server.check_status_async())
        if status is not None:
            return status
        if deadline.expired:
            raise progress.timeout(deadline)
        await asyncio.sleep(min(server.poll_interval, deadline.remaining()) or 0.001)
