"""`ModelServerReadyTrigger`: serializes only its arguments, and `run()` yields one event
whose status and message come from the engine's wait on the emulated cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator

CLASSPATH = "modeldeploy_provider.triggers.modeldeploy.ModelServerReadyTrigger"
MISSING = "c0ffee00-0000-4000-8000-000000000000"


def ModelServerReadyTrigger(*args: Any, **kwargs: Any) -> Any:
    """The trigger, imported when a test runs: collecting tests must not import Airflow."""
    from modeldeploy_provider.triggers.modeldeploy import ModelServerReadyTrigger as trigger

    return trigger(*args, **kwargs)


def first_event(trigger: Any) -> dict[str, Any]:
    async def run() -> Any:
        events = trigger.run()
        event = await events.__anext__()
        await events.aclose()
        return event

    return asyncio.run(run()).payload


@pytest.fixture
def kserve(set_connection: Any, k8s_emulator: KubernetesEmulator) -> Any:
    """A KServe connection on the emulator and its deployer."""
    from modeldeploy.flavors import create_deployer

    settings = {"kubeconfig": k8s_emulator.kubeconfig_dict(), "namespace": "default"}
    set_connection(
        "trigger_kserve",
        "modeldeploy_kserve",
        extra={"kubeconfig_secret": json.dumps(settings["kubeconfig"]), "namespace": "default"},
    )
    return create_deployer("kserve", settings)


def write(deployer: Any, uri: str = "s3://models/iris/1") -> str:
    pending = deployer.begin_deploy(
        {"model_name": "iris", "model_uri": uri, "model_type": "sklearn"}
    )
    return pending.server_uuid


def test_serialize_round_trip_holds_only_arguments() -> None:
    trigger = ModelServerReadyTrigger(MISSING, "conn", "inactive", 12)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "model_server_uuid": MISSING,
        "modeldeploy_conn_id": "conn",
        "target_state": "inactive",
        "timeout": 12.0,
    }
    again = type(trigger)(**kwargs)
    assert again.serialize() == (classpath, kwargs)


def test_run_yields_success_when_ready(kserve: Any, k8s_emulator: KubernetesEmulator) -> None:
    uuid = write(kserve)
    event = first_event(ModelServerReadyTrigger(uuid, "trigger_kserve", "active", 20))
    assert event["status"] == "success", event
    assert event["model_server_uuid"] == uuid
    assert event["server"]["uuid"] == uuid
    assert event["server"]["state"] == "active"
    assert event["server"]["flavor"] == "kserve"
    assert event["message"].startswith(f"model server {uuid} is active")
    assert k8s_emulator.token not in json.dumps(event)


def test_run_reports_the_platform_failure_at_once(
    kserve: Any, k8s_emulator: KubernetesEmulator
) -> None:
    k8s_emulator.kserve.fail_when_uri_startswith = "s3://unreachable"
    k8s_emulator.kserve.failure_message = "failed to download model: bucket unreachable"
    uuid = write(kserve, "s3://unreachable/iris/1")
    event = first_event(ModelServerReadyTrigger(uuid, "trigger_kserve", "active", 60))
    assert event["status"] == "error", event
    assert "bucket unreachable" in event["message"]
    assert event["server"] is None


def test_run_times_out_with_the_last_state(kserve: Any, k8s_emulator: KubernetesEmulator) -> None:
    k8s_emulator.kserve.hold = True  # the new generation never becomes ready
    uuid = write(kserve)
    event = first_event(ModelServerReadyTrigger(uuid, "trigger_kserve", "active", 0.5))
    assert event["status"] == "timeout", event
    assert "pending_startup" in event["message"] and "0.5s" in event["message"]


def test_run_reports_a_missing_connection(airflow_db: Any) -> None:
    event = first_event(ModelServerReadyTrigger(MISSING, "nope"))
    assert event["status"] == "error"
    assert "modeldeploy connection 'nope' is not defined" in event["message"]


def test_run_reports_a_server_that_is_gone(kserve: Any) -> None:
    event = first_event(ModelServerReadyTrigger(MISSING, "trigger_kserve", "active", 5))
    assert event["status"] == "error"
    assert f"no kserve model server with uuid {MISSING}" in event["message"]


def non_emulator_threads() -> int:
    """Threads of this process, leaving out the emulator's one-per-connection handlers."""
    import threading

    return sum(1 for t in threading.enumerate() if "process_request_thread" not in t.name)


def test_many_triggers_wait_in_one_loop_without_a_thread_each(
    kserve: Any, k8s_emulator: KubernetesEmulator
) -> None:
    """More triggers than the loop's thread pool has workers each hold a watch at once, and
    all see readiness: with a thread per wait, at most the pool's size could be watching."""
    from concurrent.futures import ThreadPoolExecutor

    count = 40  # more than min(32, CPUs + 4), the default pool's largest size
    k8s_emulator.kserve.hold = True
    uuids = [write(kserve) for _ in range(count)]
    names = [s.name for s in (kserve.get_model_server(u) for u in uuids)]
    before = non_emulator_threads()
    pool_max = ThreadPoolExecutor()._max_workers

    async def run() -> tuple[list[dict[str, Any]], int]:
        async def one(uuid: str) -> dict[str, Any]:
            events = ModelServerReadyTrigger(uuid, "trigger_kserve", "active", 60).run()
            try:
                return (await events.__anext__()).payload
            finally:
                await events.aclose()

        tasks = [asyncio.create_task(one(u)) for u in uuids]
        watching = await asyncio.to_thread(
            k8s_emulator.wait_for, lambda: k8s_emulator.store.open_watches() >= count, 30
        )
        assert watching, f"only {k8s_emulator.store.open_watches()} of {count} are watching"
        during = non_emulator_threads()
        # let the controller roll every held revision out, as upstream does once it may
        k8s_emulator.kserve.hold = False
        for name in names:
            k8s_emulator.kserve.enqueue("default", name, 0)
        return list(await asyncio.gather(*tasks)), during

    events, during = asyncio.run(run())
    assert [e["status"] for e in events] == ["success"] * count, events
    assert during - before < min(count, pool_max + 1), (before, during)


def test_a_cancelled_trigger_closes_its_watch(
    kserve: Any, k8s_emulator: KubernetesEmulator
) -> None:
    k8s_emulator.kserve.hold = True
    uuid = write(kserve)

    async def run() -> bool:
        events = ModelServerReadyTrigger(uuid, "trigger_kserve", "active", 60).run()
        task = asyncio.create_task(events.__anext__())
        opened = await asyncio.to_thread(
            k8s_emulator.wait_for, lambda: k8s_emulator.store.open_watches() == 1, 10
        )
        assert opened, "the trigger never opened its watch"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await asyncio.to_thread(
            k8s_emulator.wait_for, lambda: k8s_emulator.store.open_watches() == 0, 10
        )

    assert asyncio.run(run()), "the emulator still holds the cancelled trigger's watch"
