"""Progressive delivery through each Kubernetes flavor, measured at the loopback ingress,
each figure beside its target (the local bench's figures, bench_progressive.py, per platform).

Driven as a user drives it: the flavor's `ModelDeployer` against the Kubernetes emulator
(tests/k8s_emulator; its KServe (Knative mode), Seldon Core 1 and Seldon Core 2
controllers publish the routes they report to the data plane themselves), a first deploy,
then rollouts through the engine (`modeldeploy.progressive.runner`) judged by the
platform's own request metrics in a real Prometheus, while a steady keep-alive client
sends predictions to the server's public URL through the ingress:
- a canary 10 -> 50 -> 100: failed requests (a request an idle keep-alive connection
  dropped unanswered is resent once, as urllib3 does, and counted as resent), the longest
  gap without an answer, and the share of requests the challenger answered at each step
  against the share asked for (at least 1,000 requests a step);
- a canary aborted at 50 %, and a challenger that fails every prediction rolled back by
  the analysis: the time from the verdict (the abort, the failed step) until the ingress's
  routing table holds no route to the challenger, and whether the client met the
  challenger (an answer or an error) after the rollout returned as finished.

Real MLflow scoring servers behind the data plane; real Prometheus (`make prometheus`).
Run: .venv/bin/python bench/bench_kubernetes_progressive.py [kserve seldon seldon2]
     [--bake SECONDS] [--bad-bake SECONDS] [--step-requests N]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _progressive as shared  # noqa: E402
from _table import print_table  # noqa: E402
from bench_mlflow_local import save_models  # noqa: E402

from tests.k8s_emulator import KubernetesEmulator  # noqa: E402
from tests.k8s_emulator.ingress_client import IngressClient  # noqa: E402
from tests.progressive.helpers import Prometheus, save_erroring_model  # noqa: E402

PLATFORMS = ("kserve", "seldon", "seldon2")
NAMESPACE = "default"
#: model URIs the emulator's pods "fetch"; the data plane serves each from a local model
URIS = {v: f"s3://bench/iris/{v}" for v in (1, 2, 3, 4)}
#: which local model serves each version: 1 and 3 the first model, 2 the second, 4 fails
ANSWERS = {1: shared.FIRST_ANSWER, 2: shared.SECOND_ANSWER, 3: shared.FIRST_ANSWER}
TIMEOUT = 180.0


@dataclass(frozen=True)
class Options:
    platforms: list[str]
    bake: float
    bad_bake: float
    step_requests: int


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("platforms", nargs="*", help=f"any of {', '.join(PLATFORMS)} (all)")
    parser.add_argument(
        "--bake", type=float, default=2.0, help="bake seconds of each canary step (default 2)"
    )
    parser.add_argument(
        "--bad-bake",
        type=float,
        default=3.0,
        help="bake seconds of the failing challenger's step (default 3)",
    )
    parser.add_argument(
        "--step-requests",
        type=int,
        default=shared.SHARE_REQUESTS,
        help=f"client requests measured at each canary step (default {shared.SHARE_REQUESTS})",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.platforms) - set(PLATFORMS))
    if unknown:
        parser.error(f"unknown platform(s) {unknown}; choose from {', '.join(PLATFORMS)}")
    if args.bake < 0 or args.bad_bake <= 0 or args.step_requests < 1:
        parser.error("--bake must be >= 0, --bad-bake > 0 seconds, --step-requests >= 1")
    return Options(args.platforms or list(PLATFORMS), args.bake, args.bad_bake, args.step_requests)


class Bench:
    """One flavor's deployer on the shared emulator, and the rollouts it runs."""

    def __init__(self, flavor: str, emu: KubernetesEmulator, prometheus: Prometheus) -> None:
        from modeldeploy.flavors import create_deployer

        self.flavor, self.emu, self.prometheus = flavor, emu, prometheus
        self.name = f"iris-{flavor}"
        # how a user points each flavor at its ingress (Istio/Knative gateway, Seldon mesh)
        where = "mesh_url" if flavor == "seldon2" else "ingress_base_url"
        self.deployer = create_deployer(
            flavor,
            {"namespace": NAMESPACE, "kubeconfig": emu.kubeconfig_dict(), where: emu.dataplane.url},
        )

    def config(self, version: int) -> dict[str, Any]:
        return {
            "model_name": self.name,
            "model_uri": URIS[version],
            "model_version": str(version),
            "model_type": "sklearn",
            "pipeline_name": "bench",
            "step_name": "deploy",
        }

    def deploy_first(self) -> Any:
        return self.deployer.deploy_model(self.config(1), timeout=TIMEOUT)

    def client(self, server: Any, row: list[float], pause: float) -> IngressClient:
        """A steady client of the server's public URL, through the loopback ingress."""
        from modeldeploy.flavors.kubernetes import protocols

        body: Callable[[Any], dict[str, Any]] = {
            "kserve": protocols.v1_request,
            "seldon": protocols.seldon_request,
            "seldon2": protocols.v2_request,
        }[self.flavor]
        url = urlsplit(server.prediction_url)
        plane = urlsplit(self.emu.dataplane.url)
        headers = dict(getattr(server, "request_headers", {}))
        if url.netloc != plane.netloc:  # a virtual host (Knative): the ingress routes by Host
            headers["Host"] = url.netloc
        return IngressClient(self.emu.dataplane.url, url.path, body([row]), headers, pause)

    def route_of(self, server: Any) -> tuple[str, str]:
        """The data plane's route the server's clients take: by Host on Knative, by path on
        Seldon Core 1, by the `Seldon-Model` header on Seldon Core 2."""
        key = {
            "kserve": str(urlsplit(server.prediction_url).hostname),
            "seldon": f"{NAMESPACE}/{server.name}",
            "seldon2": server.name,
        }[self.flavor]
        return self.flavor, key

    def begin(self, version: int, strategy: dict[str, Any]) -> Any:
        from modeldeploy.progressive.runner import begin_rollout, check_rollout

        analysis = {"prometheus_url": self.prometheus.url, "min_requests": 20}
        parsed, config = check_rollout(self.deployer, strategy, analysis)
        champion = self.deployer.find_model_server(model_name=self.name)[0]
        service = self.deployer.parse_config(self.config(version))
        return begin_rollout(self.deployer, champion, service, parsed, config, timeout=TIMEOUT)

    def run(self, on_progress: Callable[[Any], None] | None = None) -> Any:
        from modeldeploy.progressive.runner import run_rollout

        return run_rollout(self.deployer, self.name, timeout=600, on_progress=on_progress)

    def close(self) -> None:
        for server in self.deployer.find_model_server(model_name=self.name):
            server.delete(force=True)
        self.deployer.close()


class RouteWatch:
    """When the ingress's routing table of the server's public address last sent clients
    to a model (polled every few ms): the data plane's own view of "all traffic back on
    the champion". Only that route: a challenger may keep its own address a while."""

    def __init__(self, plane: Any, route: tuple[str, str], model_uri: str) -> None:
        self.plane, self.route, self.model_uri = plane, route, model_uri
        self.last_seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            route = self.plane.routes.get(self.route)
            if route is not None and any(b.model_uri == self.model_uri for b in route.served):
                self.last_seen = time.monotonic()

    def back(self, verdict_at: float) -> float:
        """Seconds from the verdict to the last table that still routed the model."""
        if self.last_seen is None or math.isnan(verdict_at):
            return 0.0 if self.last_seen is None else verdict_at
        return max(0.0, self.last_seen - verdict_at)

    def __enter__(self) -> RouteWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def canary(bench: Bench, server: Any, row: list[float], opts: Options) -> list[shared.Row]:
    """10 -> 50 -> 100 by the runner; each applied step held until >= 1,000 client
    requests were answered under it."""
    shares: list[tuple[int, float, int]] = []

    with bench.client(server, row, 0.0) as steady:
        steady.wait_for(50)
        bench.begin(2, {"kind": "canary", "percents": [10, 50, 100], "bake_seconds": opts.bake})

        def on_progress(state: Any) -> None:
            # once per step: an inconclusive step extended stays where it was
            if state.phase == "baking" and len(shares) == state.step_index:
                # one request at a time: only the one in flight may predate the new table
                since = len(steady.timeline) + 1
                steady.wait_for(opts.step_requests + 1, timeout=600)
                share, count = shared.share_of(steady, since, shared.SECOND_ANSWER)
                shares.append((state.steps[state.step_index].challenger_percent, share, count))

        done = bench.run(on_progress)
        since = len(steady.timeline) + 1
        steady.wait_for(50)
        after, count = shared.share_of(steady, since, shared.SECOND_ANSWER)
    label = f"{bench.flavor} canary 10->50->100"
    return [
        (f"{label}: outcome", done.phase, "succeeded", done.phase == "succeeded"),
        *shared.steady_rows(label, steady),
        *shared.share_rows(shares, f"{bench.flavor} ", opts.step_requests),
        (
            f"{label}: share on the promoted model after ({count} requests)",
            f"{after:.1f}%",
            "100",
            after == 100.0,
        ),
    ]


def abort(bench: Bench, server: Any, row: list[float], version: int) -> list[shared.Row]:
    """A canary of `version` (answering unlike the champion) held at 50 % and aborted by
    request."""
    from modeldeploy.progressive.runner import abort_rollout, advance_rollout

    plane = bench.emu.dataplane
    with (
        bench.client(server, row, 0.002) as steady,
        RouteWatch(plane, bench.route_of(server), URIS[version]) as route,
    ):
        steady.wait_for(50)
        state = bench.begin(version, {"kind": "canary", "percents": [50], "bake_seconds": 3600})
        end = time.monotonic() + TIMEOUT
        while state.phase != "baking":
            assert not state.done and time.monotonic() < end, state.message
            time.sleep(0.1)
            state = advance_rollout(bench.deployer, bench.name)
        steady.wait_for(200)
        verdict_at = time.monotonic()
        final = abort_rollout(bench.deployer, bench.name)
        done_at = time.monotonic()
        steady.wait_for(100)
    return [
        *outcome_rows(f"{bench.flavor} abort at 50%", final, route, verdict_at, done_at),
        *shared.steady_rows(f"{bench.flavor} abort at 50%", steady),
        shared.stray_row(f"{bench.flavor} abort at 50%", steady, ANSWERS[version], done_at),
    ]


def outcome_rows(
    label: str, final: Any, route: RouteWatch, verdict_at: float, done_at: float
) -> list[shared.Row]:
    return [
        (f"{label}: outcome", final.phase, "rolled_back", final.phase == "rolled_back"),
        shared.back_row(label, route.back(verdict_at), "ingress table"),
        (
            f"{label}: verdict to the rollout returned",
            f"{done_at - verdict_at:.2f} s",
            "-",
            None,
        ),
    ]


def bad_challenger(bench: Bench, server: Any, row: list[float], bake: float) -> list[shared.Row]:
    """A challenger failing every prediction at 20 %, rolled back on the platform's own
    error figures in Prometheus."""
    plane = bench.emu.dataplane
    with (
        bench.client(server, row, 0.002) as steady,
        shared.VerdictClock() as clock,
        RouteWatch(plane, bench.route_of(server), URIS[4]) as route,
    ):
        steady.wait_for(50)
        bench.begin(4, {"kind": "canary", "percents": [20], "bake_seconds": bake})
        final = bench.run()
        done_at = time.monotonic()
        steady.wait_for(100)
    label = f"{bench.flavor} bad challenger"
    verdict_at = clock.failed_at if clock.failed_at is not None else float("nan")
    return [
        *outcome_rows(label, final, route, verdict_at, done_at),
        (f"{label}: reason", final.message[:70], "a failed step", None),
        shared.stray_row(label, steady, shared.NO_ANSWER, done_at),
    ]


def platform(
    flavor: str, emu: KubernetesEmulator, prom: Prometheus, row: list, opts: Options
) -> list[shared.Row]:
    started = time.monotonic()
    bench = Bench(flavor, emu, prom)

    def timed(what: str, step: Callable[[], Any]) -> Any:
        begun = time.monotonic()
        result = step()
        print(f"{flavor}: {what} took {time.monotonic() - begun:.1f} s", flush=True)
        return result

    try:
        server = timed("first deploy", bench.deploy_first)
        rows = timed("canary", lambda: canary(bench, server, row, opts))
        # a challenger that answers unlike the champion: the first model again if the
        # canary promoted the second, else the second
        promoted = rows[0][1] == "succeeded"
        rows += timed("abort", lambda: abort(bench, server, row, 3 if promoted else 2))
        rows += timed("bad challenger", lambda: bad_challenger(bench, server, row, opts.bad_bake))
    finally:
        bench.close()
    seconds = time.monotonic() - started
    return [*rows, (f"{flavor}: run time", f"{seconds:.0f} s", "<= 180 s", seconds <= 180)]


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    logging.getLogger("modeldeploy").propagate = False  # the verdict clock listens, quietly
    opts = parse(argv)
    table: list[shared.Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-k8s-progressive-") as tmp:
        root = Path(tmp)
        first, second, body = save_models(root)
        bad = save_erroring_model(root)
        row = body["dataframe_split"]["data"][0]
        prometheus = Prometheus(root / "prometheus")
        try:
            with KubernetesEmulator(namespaces=[NAMESPACE]) as emu:
                emu.seldon2.install_runtime(NAMESPACE)  # the Servers MLServer and Triton
                plane = emu.dataplane
                for version, model in ((1, first), (2, second), (3, first), (4, bad)):
                    plane.register_model(URIS[version], str(model))
                for uri in URIS.values():
                    plane.wait_ready(uri)
                prometheus.scrape(plane.metrics_url)
                for flavor in opts.platforms:
                    table += platform(flavor, emu, prometheus, row, opts)
                prometheus.close()  # before the ingress it scrapes goes away
                if emu.internal_errors:
                    print("emulator internal errors:", *emu.internal_errors, sep="\n")
        finally:
            prometheus.close()
    print_table(
        f"progressive delivery through the Kubernetes flavors at the loopback ingress "
        f"(bake {opts.bake:g} s a step)",
        table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
