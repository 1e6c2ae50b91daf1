"""Benchmarks of the Kubernetes flavors against the API emulator (issue 3 item 15).

1. Readiness detection: how long after the platform's status says "ready" (for the
   generation we wrote) does `deploy_model` / `wait_until_ready` know it? The time of the
   status change is taken inside the emulator's store, when the controller's status write
   lands; the time of detection is when our `on_transition` reports `active`. The seeds
   (ZenML's Seldon/KServe deployers) poll every 5 s, i.e. 2.5 s on average, up to 5 s.
2. `find_model_server` over 10,000 model servers with a filter: wall time and the number
   of API requests, plus the unfiltered listing for comparison.

Run: `.venv/bin/python bench/bench_kubernetes.py [--rounds 40] [--servers 10000]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from modeldeploy.flavors import create_deployer  # noqa: E402
from modeldeploy.status import ServiceState, ServiceStatus, utcnow  # noqa: E402

from tests.k8s_emulator import KubernetesEmulator  # noqa: E402

READY_TARGET_MS = 100.0
FIND_TARGET_S = 2.0
SEED_POLL_S = 5.0


def _is_ready(flavor: str, obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if flavor == "seldon":
        return status.get("state") == "Available"
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def readiness(flavor: str, rounds: int) -> list[float]:
    """Milliseconds from the Ready status write to our `active` transition, per deploy."""
    latencies: list[float] = []
    with KubernetesEmulator(namespaces=["default"]) as emu:
        ready_at: dict[str, float] = {}
        lock = threading.Lock()
        plural = "seldondeployments" if flavor == "seldon" else "inferenceservices"

        def listener(event: Any) -> None:  # runs inside the store's write
            if event.rkey.endswith(plural) and _is_ready(flavor, event.obj):
                name = event.key.split("/", 1)[1]
                with lock:
                    ready_at.setdefault(name, time.monotonic())

        emu.store.add_listener(listener)
        deployer = create_deployer(flavor, {"kubeconfig": emu.kubeconfig_dict()})
        deployer.find_model_server()  # warm up: import the client, open the connection
        detected: dict[str, float] = {}

        def on_transition(server: Any, status: ServiceStatus) -> None:
            if status.state == ServiceState.ACTIVE:
                detected.setdefault(server.name, time.monotonic())

        for i in range(rounds + 2):
            config = {
                "model_name": f"bench-{i}",
                "model_uri": f"s3://models/bench/{i}",
                "model_type": "sklearn",
                "pipeline_name": "bench",
            }
            server = deployer.deploy_model(config, timeout=30, on_transition=on_transition)
            if i >= 2:  # the first rounds warm up the watch path
                latencies.append((detected[server.name] - ready_at[server.name]) * 1000)
        emu.store.remove_listener(listener)
        deployer.close()
    return latencies


def find_many(flavor: str, count: int) -> dict[str, float]:
    """Time and API requests of `find_model_server` over `count` servers."""
    with KubernetesEmulator(namespaces=["default"], controllers=False) as emu:
        deployer = create_deployer(flavor, {"kubeconfig": emu.kubeconfig_dict()})
        server_class = deployer.server_class
        objects = []
        for i in range(count):
            config = deployer.parse_config(
                {
                    "model_name": f"model-{i % 100}",
                    "model_uri": f"s3://models/m{i}",
                    "model_type": "sklearn",
                    "pipeline_name": f"pipeline-{i % 20}",
                    "step_name": "deploy",
                }
            )
            uuid = uuid4()
            server = server_class(
                uuid, config, ServiceStatus(), deployer=deployer, name=f"m{i}-{uuid.hex[:8]}"
            )
            objects.append(server.build_object(config, None, utcnow()))
        emu.bulk_load(deployer.kind.kind, objects)
        deployer.find_model_server(model_name="warm-up")  # import + connection

        emu.requests.reset()
        started = time.perf_counter()
        found = deployer.find_model_server(
            pipeline_name="pipeline-7", pipeline_step_name="deploy", model_name="model-7"
        )
        filtered_s = time.perf_counter() - started
        filtered_requests = len(emu.requests)
        assert len(found) == count // 100, len(found)

        emu.requests.reset()
        started = time.perf_counter()
        everything = deployer.find_model_server()
        all_s = time.perf_counter() - started
        all_requests = len(emu.requests)
        assert len(everything) == count
        deployer.close()
    return {
        "filtered_s": filtered_s,
        "filtered_requests": filtered_requests,
        "filtered_found": len(found),
        "all_s": all_s,
        "all_requests": all_requests,
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--servers", type=int, default=10_000)
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str]] = []
    ok = True
    for flavor in ("seldon", "kserve"):
        lat = readiness(flavor, args.rounds)
        p50, p95 = statistics.median(lat), _pct(lat, 0.95)
        good = p95 < READY_TARGET_MS
        ok &= good
        rows.append(
            (
                f"{flavor}: readiness detected after the status change (n={len(lat)})",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(lat):.1f} ms",
                f"p95 < {READY_TARGET_MS:.0f} ms (seeds poll every {SEED_POLL_S:.0f} s: "
                f"~{SEED_POLL_S / 2 * 1000:.0f} ms mean)",
                "yes" if good else "NO",
            )
        )
    for flavor in ("seldon", "kserve"):
        found = find_many(flavor, args.servers)
        good = found["filtered_s"] < FIND_TARGET_S
        ok &= good
        rows.append(
            (
                f"{flavor}: find_model_server over {args.servers:,} servers, filtered",
                f"{found['filtered_s']:.3f} s, {found['filtered_requests']:.0f} API request(s), "
                f"{found['filtered_found']:.0f} found",
                f"< {FIND_TARGET_S:.0f} s",
                "yes" if good else "NO",
            )
        )
        rows.append(
            (
                f"{flavor}: find_model_server over {args.servers:,} servers, no filter",
                f"{found['all_s']:.3f} s, {found['all_requests']:.0f} API requests (pages of 500)",
                "(reference)",
                "-",
            )
        )

    headers = ("measure", "figure", "target", "met")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    print("\n## Kubernetes flavors (seldon, kserve) against the API emulator\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
