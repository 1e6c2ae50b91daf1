"""The async wait (`wait_for_state_async`, `watch_until_async`) keeps the waiting contract:
410 Gone re-reads, dropped watches resume, a stale Ready is never taken for the generation
we wrote (also when another process wrote it), failures come at once with the reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeploy.errors import DeploymentTimeoutError, PlatformError
from modeldeploy.flavors.kubernetes.watching_async import watch_until_async
from modeldeploy.status import ServiceState
from modeldeploy.waiting import Deadline
from modeldeploy.waiting_async import wait_for_server

from tests.flavors_kubernetes.conftest import Cluster, controller_of


def ready(server: Any, timeout: float) -> Any:
    async def run() -> Any:
        try:
            return await server.wait_for_state_async(ServiceState.ACTIVE, Deadline(timeout))
        finally:
            await server.deployer.aclose()

    return asyncio.run(run())


def test_async_watch_re_reads_after_410_gone(cluster: Cluster, deployer: Any, flavor: str) -> None:
    emu = cluster.requires_emulator()
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    old = deployer.resources.get(server.name)
    deployer.stop_model_server(server.uuid, timeout=cluster.timeout)
    emu.compact(keep_last=0)
    reads: list[bool] = []
    gone: list[bool] = []

    def judge(obj: Any, from_event: bool) -> Any:
        reads.append(from_event)
        return obj if len(reads) > 1 else None  # ignore the first read: watch from `old`

    async def run() -> Any:
        try:
            return await watch_until_async(
                deployer.aio,
                server.name,
                judge,
                Deadline(10),
                start_from=lambda _obj: old["metadata"]["resourceVersion"],
                on_gone=lambda: gone.append(True),
            )
        finally:
            await deployer.aclose()

    obj = asyncio.run(run())
    assert gone == [True] and reads == [False, False]  # 410, then a fresh read
    assert obj["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]


def test_async_wait_never_takes_a_stale_ready(cluster: Cluster, deployer: Any, flavor: str) -> None:
    emu = cluster.requires_emulator()
    controller = controller_of(emu, flavor)
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    controller.stop()
    try:
        server.update(deployer.parse_config(cluster.config(flavor, version=2)))
        with pytest.raises(DeploymentTimeoutError) as caught:
            ready(server, 0.5)
    finally:
        controller.start()
    assert "generation 2" in str(caught.value)
    status = ready(server, cluster.timeout)
    assert status.state == ServiceState.ACTIVE and status.observed_generation == 2


def test_async_wait_in_another_process_replays_the_write_for_seldon(
    cluster: Cluster, make_deployer: Any
) -> None:
    emu = cluster.requires_emulator()
    writer = make_deployer("seldon")
    server = writer.deploy_model(cluster.config("seldon", version=1), timeout=cluster.timeout)
    emu.seldon.stop()
    server.update(writer.parse_config(cluster.config("seldon", version=2)))
    waiter_deployer = make_deployer("seldon")

    async def wait(timeout: float) -> Any:
        try:
            return await wait_for_server(
                waiter_deployer, server.uuid, ServiceState.ACTIVE, Deadline(timeout)
            )
        finally:
            await waiter_deployer.aclose()

    try:
        with pytest.raises(DeploymentTimeoutError):
            asyncio.run(wait(0.5))
    finally:
        emu.seldon.start()
    waiter = asyncio.run(wait(cluster.timeout))
    assert waiter.is_running and waiter.status.generation == 2


def test_async_wait_resumes_dropped_watches_and_reports_failures(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    emu = cluster.requires_emulator()
    emu.faults.drop_watch_after_events = 1
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    server.update(deployer.parse_config(cluster.config(flavor, version=2)))
    status = ready(server, cluster.timeout)
    assert status.observed_generation == 2
    watches = [r for r in emu.requests.entries if r.verb == "watch"]
    versions = [r.query.get("resourceVersion") for r in watches]
    assert len(set(versions)) == len(versions)  # each resumed from the last version seen

    controller = controller_of(emu, flavor)
    controller.fail_when_uri_startswith = "s3://unreachable-bucket"
    controller.failure_message = "failed to download model: bucket unreachable"
    server.update(deployer.parse_config({**cluster.config(flavor), "model_uri": cluster.bad_uri()}))
    with pytest.raises(PlatformError, match="bucket unreachable"):
        ready(server, cluster.timeout)
