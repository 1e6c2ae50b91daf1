"""The local flavor's traffic router against direct access to the same scoring server.

One server, one challenger of the same model (so one scoring server answers both ways):
requests go either straight to its private port or through the router on the public port,
interleaved in one run so both share the machine's noise.

- added latency at p50, sequential requests on a keep-alive connection (target <= 0.5 ms)
- throughput with concurrent keep-alive clients, routed / direct (target >= 90 %)
- a challenger added under a steady keep-alive client: failed and resent requests (0; a
  resent one would be lost by a client that never resends) and the longest gap;
- a canary split and a mirror under a steady client, then promote: failed requests (0)

Run: .venv/bin/python bench/bench_router.py
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import median, percentile, print_table
from bench_mlflow_local import Load, connect, post, save_models

LATENCY_REQUESTS = 2000
THROUGHPUT_CLIENTS = 8
THROUGHPUT_SECONDS = 4.0
ROUNDS = 3


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def throughput(port: int, body: bytes, clients: int, seconds: float) -> float:
    """Answered requests a second from `clients` threads on keep-alive connections."""
    done = [0] * clients
    stop = threading.Event()

    def client(i: int) -> None:
        conn = connect(port)
        while not stop.is_set():
            if post(port, body, conn) == 200:
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(done) / seconds


def wait_for(predicate, limit: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the router did not reach the expected state")
        time.sleep(0.05)


def main() -> None:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
    from modeldeploy.traffic import CHALLENGER

    rows: list[tuple[str, str, str, bool | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        first, second, body = save_models(root)
        raw = json.dumps(body).encode()
        deployer = MLflowModelDeployer({"home": root / "home"})
        config = {"model_name": "bench", "model_uri": str(first)}
        server = deployer.deploy(config, timeout=300).server
        try:
            public = port_of(server.prediction_url or "")
            server.add_challenger(config)  # the same model: one scoring server behind both
            wait_for(lambda: all(v.ready for v in server.traffic_status().variants))
            server.set_traffic(50)
            wait_for(lambda: server.traffic_status().weight_of(CHALLENGER) == 50)
            status = server.traffic_status()
            direct = port_of(status.variants[0].url or "")

            routed_lat, direct_lat = [], []
            via_router, straight = connect(public), connect(direct)
            for _ in range(200):  # warm both paths
                post(public, raw, via_router), post(direct, raw, straight)
            for _ in range(LATENCY_REQUESTS):
                t = time.perf_counter()
                post(direct, raw, straight)
                direct_lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                post(public, raw, via_router)
                routed_lat.append(time.perf_counter() - t)
            added = (median(routed_lat) - median(direct_lat)) * 1000
            rows.append(
                (
                    "p50 direct / through the router",
                    f"{median(direct_lat) * 1000:.2f} ms / {median(routed_lat) * 1000:.2f} ms",
                    "reference",
                    None,
                )
            )
            rows.append(("p50 added by the router", f"{added:.3f} ms", "<= 0.5 ms", added <= 0.5))
            p99 = (percentile(routed_lat, 99) - percentile(direct_lat, 99)) * 1000
            rows.append(("p99 added by the router", f"{p99:.3f} ms", "-", None))

            direct_rps, routed_rps = [], []
            for _ in range(ROUNDS):  # alternate, so drifts in machine load hit both
                direct_rps.append(throughput(direct, raw, THROUGHPUT_CLIENTS, THROUGHPUT_SECONDS))
                routed_rps.append(throughput(public, raw, THROUGHPUT_CLIENTS, THROUGHPUT_SECONDS))
            ratio = median(routed_rps) / median(direct_rps)
            rows.append(
                (
                    f"throughput, {THROUGHPUT_CLIENTS} keep-alive clients: direct / routed",
                    f"{median(direct_rps):.0f} / {median(routed_rps):.0f} req/s",
                    "reference",
                    None,
                )
            )
            rows.append(
                ("throughput routed / direct", f"{ratio * 100:.1f} %", ">= 90 %", ratio >= 0.9)
            )
            server.remove_challenger()
            wait_for(lambda: server.traffic_status().metrics_url is None)

            # Reference: the longest gap of the same client through a plain in-place update
            # (no router), in this run, on this machine's load.
            plain = Load(public, raw)
            worker = threading.Thread(target=plain.run, args=(True,), daemon=True)
            worker.start()
            time.sleep(0.5)
            deployer.deploy({**config, "model_uri": str(second)}, timeout=300)
            deployer.deploy(config, timeout=300)
            plain.stop.set()
            worker.join()
            rows.append(
                (
                    "reference: two in-place updates, longest gap / failed",
                    f"{plain.longest_gap * 1000:.0f} ms / {plain.failed}",
                    "-",
                    None,
                )
            )

            # Zero failures under a steady client: challenger, split, mirror, promote.
            load = Load(public, raw)
            worker = threading.Thread(target=load.run, args=(True,), daemon=True)
            worker.start()
            started = time.monotonic()
            time.sleep(0.5)
            server.add_challenger({**config, "model_uri": str(second)})
            wait_for(lambda: all(v.ready for v in server.traffic_status().variants))
            with load.lock:  # the add alone: two model loads, then the router takes over
                added = (load.sent, load.failed, load.retried, load.longest_gap)
                load.longest_gap = 0.0
            rows.append(
                (
                    "add a challenger (keep-alive): sent / failed / resent",
                    f"{added[0]} / {added[1]} / {added[2]}",
                    "0 failed, 0 resent",
                    added[1] == 0 and added[2] == 0,
                )
            )
            rows.append(
                (
                    "  longest gap without an answer while adding",
                    f"{added[3] * 1000:.0f} ms",
                    "< 100 ms",
                    added[3] < 0.1,
                )
            )
            server.set_traffic(50, mirror_percent=100)
            wait_for(lambda: server.traffic_status().weight_of(CHALLENGER) == 50)
            time.sleep(1.0)
            server.promote_challenger()
            wait_for(lambda: server.traffic_status().metrics_url is None)
            took = time.monotonic() - started
            time.sleep(0.5)
            load.stop.set()
            worker.join()
            rows.append(
                (
                    "add, 50 % + mirror, promote (keep-alive): sent / failed / resent",
                    f"{load.sent} / {load.failed} / {load.retried} in {took:.1f} s",
                    "0 failed, 0 resent",
                    load.failed == 0 and load.retried == 0,
                )
            )
            rows.append(
                (
                    "  longest gap without an answer after the add",
                    f"{load.longest_gap * 1000:.0f} ms",
                    "< 100 ms",
                    load.longest_gap < 0.1,
                )
            )
            answer = json.loads(_post_read(public, raw))
            rows.append(
                (
                    "answer after promotion is the challenger's",
                    str(answer),
                    "[2, 2, 2, 2]",
                    answer.get("predictions") == [2, 2, 2, 2],
                )
            )
        finally:
            server.delete(force=True)
    print_table("local traffic router", rows)


def _post_read(port: int, body: bytes) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        return conn.getresponse().read()
    finally:
        conn.close()


if __name__ == "__main__":
    main()
