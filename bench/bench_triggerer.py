"""Benchmark: one triggerer process holding many deferred waits (issue 13 item 1).

`ModelServerReadyTrigger.run()` coroutines, 500 by default, run in one event loop, as
Airflow's triggerer runs them, against KServe InferenceServices on the Kubernetes API
emulator. The emulator runs in a child process (its one-thread-per-connection HTTP server
would otherwise blur this process's threads and memory). Its controller holds every
server not-ready; the child then turns them ready one after another and records when each
status write landed (CLOCK_MONOTONIC is one clock for both processes); this process records
when each trigger fired. Figures:

1. detection latency: trigger event time minus the platform's ready time, p50/p95/max;
2. memory per 100 waits: resident set growth from before the triggers started until all
   are watching;
3. threads while all wait (a thread per wait would add one per trigger);
4. cancel: extra triggers are cancelled; time until the emulator sees their watches closed.

Run: `.venv/bin/python bench/bench_triggerer.py [--waits 500] [--interval 0.01]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._table import median, percentile, print_table  # noqa: E402

LATENCY_P95_TARGET_MS = 100.0
MEMORY_TARGET_MB = 10.0  # per 100 waits
CANCEL_TARGET_S = 1.0
CONN_ID = "bench_triggerer"
CANCELLED = 20


def emulator_process(pipe: Connection, count: int, interval: float) -> None:
    """The cluster: `count` held InferenceServices; readies them on request."""
    from modeldeploy.flavors import create_deployer

    from tests.k8s_emulator import KubernetesEmulator

    with KubernetesEmulator(namespaces=["default"]) as emu:
        emu.kserve.hold = True
        settings = {"kubeconfig": emu.kubeconfig_dict(), "namespace": "default"}
        servers: list[tuple[str, str]] = []
        with create_deployer("kserve", settings) as deployer:
            for i in range(count):
                pending = deployer.begin_deploy(
                    {"model_name": f"m{i}", "model_uri": "s3://models/m/1", "model_type": "sklearn"}
                )
                server = deployer.get_model_server(pending.server_uuid)
                servers.append((pending.server_uuid, server.name))  # type: ignore[attr-defined]
        pipe.send((emu.kubeconfig_dict(), servers))
        while True:
            command, arg = pipe.recv()
            if command == "wait_watches":  # until at least / at most `arg` watches are open
                want, at_least = arg

                def enough(want: int = want, at_least: bool = at_least) -> bool:
                    n = emu.store.open_watches()
                    return n >= want if at_least else n <= want

                emu.wait_for(enough, timeout=120)
                pipe.send((time.monotonic(), emu.store.open_watches()))
            elif command == "ready":
                # the controller rolls each held revision out as upstream does, at once
                emu.kserve.delay = 0.0
                emu.kserve.hold = False
                times: dict[str, float] = {}
                for uuid, name in arg:
                    emu.kserve.enqueue("default", name, 0)
                    times[uuid] = time.monotonic()
                    time.sleep(interval)
                pipe.send(times)
            else:
                pipe.send(None)
                return


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def triggerer(pipe: Connection, servers: list[tuple[str, str]], waits: int) -> None:
    from modeldeploy_provider.triggers.modeldeploy import ModelServerReadyTrigger

    loop = asyncio.get_running_loop()

    def ask(command: str, arg: Any = None) -> Any:
        pipe.send((command, arg))
        return pipe.recv()

    # Warm up imports and the connection read with one throw-away wait that times out.
    warm = ModelServerReadyTrigger(servers[-1][0], CONN_ID, "active", 0.2).run()
    await warm.__anext__()
    await warm.aclose()

    seen: dict[str, float] = {}
    statuses: dict[str, str] = {}

    async def one(uuid: str) -> None:
        events = ModelServerReadyTrigger(uuid, CONN_ID, "active", 300).run()
        try:
            event = await events.__anext__()
            seen[uuid] = time.monotonic()
            statuses[uuid] = event.payload["status"]
        finally:
            await events.aclose()

    threads_before = threading.active_count()
    rss_before = rss_mb()
    total = waits + CANCELLED
    tasks = {uuid: asyncio.create_task(one(uuid)) for uuid, _ in servers[:total]}
    _, watching = await loop.run_in_executor(None, ask, "wait_watches", (total, True))
    rss_during = rss_mb()
    threads_during = threading.active_count()

    cancelled = [tasks.pop(uuid) for uuid, _ in servers[waits:total]]
    cancel_at = time.monotonic()
    for task in cancelled:
        task.cancel()
    await asyncio.gather(*cancelled, return_exceptions=True)
    closed_at, left = await loop.run_in_executor(None, ask, "wait_watches", (waits, False))

    ready_at = await loop.run_in_executor(None, ask, "ready", servers[:waits])
    await asyncio.gather(*tasks.values())
    ask("stop")

    latencies = [(seen[u] - ready_at[u]) * 1000 for u in ready_at if u in seen]
    ok = sum(1 for s in statuses.values() if s == "success")
    p95 = percentile(latencies, 95)
    per_100 = (rss_during - rss_before) / total * 100
    cancel_s = closed_at - cancel_at
    print_table(
        f"{waits} deferred waits in one event loop (+{CANCELLED} cancelled)",
        [
            ("waits watching at once", f"{watching}", f">= {total}", watching >= total),
            ("triggers that saw success", f"{ok}", f"{waits}", ok == waits),
            ("readiness seen, p50", f"{median(latencies):.1f} ms", "-", None),
            (
                "readiness seen, p95",
                f"{p95:.1f} ms",
                f"< {LATENCY_P95_TARGET_MS:g} ms",
                p95 < LATENCY_P95_TARGET_MS,
            ),
            ("readiness seen, max", f"{max(latencies):.1f} ms", "-", None),
            (
                "memory per 100 waits",
                f"{per_100:.2f} MiB",
                f"<= {MEMORY_TARGET_MB:g} MiB",
                per_100 <= MEMORY_TARGET_MB,
            ),
            (
                "threads before / while waiting",
                f"{threads_before} / {threads_during}",
                f"< {threads_before + total} (no thread per wait)",
                threads_during < threads_before + total,
            ),
            (
                f"{CANCELLED} cancelled watches closed (emulator side)",
                f"{cancel_s:.3f} s",
                f"< {CANCEL_TARGET_S:g} s",
                cancel_s < CANCEL_TARGET_S and left <= waits,
            ),
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=500)
    parser.add_argument(
        "--interval", type=float, default=0.01, help="seconds between two servers turning ready"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # one "is active" line per trigger would drown the table
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-triggerer-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=emulator_process, args=(child, args.waits + CANCELLED + 1, args.interval)
    )
    proc.start()
    kubeconfig, servers = parent.recv()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "modeldeploy_kserve",
            "extra": json.dumps(
                {"kubeconfig_secret": json.dumps(kubeconfig), "namespace": "default"}
            ),
        }
    )
    try:
        asyncio.run(triggerer(parent, servers, args.waits))
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
