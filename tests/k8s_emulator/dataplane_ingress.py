"""The data plane's loopback ingress: an asyncio HTTP/1.1 server on its own thread.

Per request it finds the route the way the platform's gateway does (Seldon 1 path prefix,
Seldon 2 `Seldon-Model` header, else the KServe host), draws one backend by weight from the
route as published at that instant, adapts the protocol to the backend's MLflow scoring
server and counts the answer in the backend's metrics. Mirror copies go out after the
client has its answer, as tasks the client never waits for. HTTP framing and the keep-alive
pool are the local router's (core/modeldeploy/flavors/mlflow/router.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from modeldeploy.flavors.mlflow.router import (
    MAX_HEAD,
    MAX_MIRRORS_IN_FLIGHT,
    BackendError,
    Pool,
    Request,
    read_request,
)
from modeldeploy.flavors.mlflow.router import (
    Backend as Upstream,
)

from .dataplane_protocols import Call, ProtocolError, answer, call_of, error, invocation, rows_of

if TYPE_CHECKING:
    from .dataplane import Backend, DataPlane, Route

METRICS_PATH = "/metrics"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def _response(
    status: int, body: bytes, content_type: str = "application/json", extra: str = ""
) -> bytes:
    reason = REASONS.get(status, "Service Unavailable" if status == 503 else "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def _json(status: int, payload: Any, extra: str = "") -> bytes:
    return _response(status, json.dumps(payload).encode(), extra=extra)


class Ingress:
    """Everything here runs on the ingress thread's event loop."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.rng = plane.rng
        self.pools: dict[int, Pool] = {}  # scoring-server port -> keep-alive pool
        self.mirrors: set[asyncio.Task[None]] = set()
        self.mirrors_dropped = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                except ValueError:
                    writer.write(_response(400, b"", "text/plain"))
                    return
                writer.write(await self.handle(request))
                await writer.drain()
                if not request.keep_alive:
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def serve_metrics(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
            while True:
                request = await read_request(reader, writer)
                if request.target.split("?", 1)[0] != METRICS_PATH:
                    writer.write(_response(404, b"", "text/plain"))
                else:
                    body = self.plane.metrics.render()
                    writer.write(_response(200, body, "text/plain; version=0.0.4"))
                await writer.drain()
                if not request.keep_alive:
                    break
        with contextlib.suppress(OSError):
            writer.close()

    # ---------------------------------------------------------------------------- routing

    def find(self, request: Request) -> tuple[Route | None, str, str]:
        """(route, what was asked for, the path inside the route), in the gateways' order:
        Istio's `/seldon/<ns>/<name>/` prefix, the mesh's `seldon-model` header on `/v2`
        paths, the KServe host, then the mesh's model name taken from a `/v2/models/` path
        when no header was sent (Seldon 2's Lua filter)."""
        path = request.target.split("?", 1)[0]
        if path.startswith("/seldon/"):
            parts = path.split("/", 4)
            key = "/".join(parts[2:4])
            inner = "/" + parts[4] if len(parts) > 4 else "/"
            return self.plane.route("seldon", key), key, inner
        header = request.header("seldon-model")
        if header is not None:
            name = header.decode("latin-1").strip()
            found = self.plane.route("seldon2", name) if path.startswith("/v2") else None
            return found, name, path
        host = (request.header("host") or b"").decode("latin-1").rsplit(":", 1)[0].lower()
        route = self.plane.route("kserve", host)
        if route is None and path.startswith("/v2/models/"):
            name = path.removeprefix("/v2/models/").split("/", 1)[0]
            return self.plane.route("seldon2", name), name, path
        return route, host, path

    async def handle(self, request: Request) -> bytes:
        route, asked, inner = self.find(request)
        if route is None:
            return _response(404, f"no route for {asked!r}\n".encode(), "text/plain")
        call = call_of(inner)
        if call is None or request.method != "POST":
            return _json(404, error(call, f"{request.method} {inner} is not an inference path"))
        if route.model_name is not None and call.model not in (None, route.model_name):
            return _json(404, error(call, f"Model with name {call.model} does not exist."))
        try:
            rows = rows_of(call, json.loads(request.body or b"null"))
        except (ProtocolError, ValueError) as exc:
            return _json(400, error(call, str(exc)))
        backend = route.pick(self.rng)
        if backend is None:
            return _response(503, b"no healthy upstream", "text/plain")
        # every draw of a request is taken before it waits: a seeded split is reproducible
        copies = [m for m in route.mirrors if self.rng.random() * 100 < m.mirror_percent]
        status, payload = await self.exchange(route, backend, call, rows, asked)
        for mirror in copies:
            self._start_mirror(route, mirror, call, rows, asked)
        extra = ""
        if route.platform == "seldon2":  # Envoy names the model version that answered
            served = backend.metric_labels.get("model_internal", backend.key)
            extra = f"x-seldon-route: :{served}:\r\n"
        return _json(status, payload, extra)

    async def exchange(
        self, route: Route, backend: Backend, call: Call, rows: list[list[Any]], asked: str
    ) -> tuple[int, Any]:
        """Ask the backend's scoring server; count its answer under the backend's labels."""
        server = self.plane.servers.get(backend.model_uri)
        if server is None or not server.ready:
            why = "no model registered" if server is None else "the model is not loaded yet"
            message = f"backend {backend.key}: {why} for {backend.model_uri}"
            return 503, error(call, message)
        body = json.dumps(invocation(rows, server.columns)).encode()
        head = (
            f"POST /invocations HTTP/1.1\r\nhost: 127.0.0.1:{server.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        upstream = Request("POST", "/invocations", head, body, True, {})
        pool = self.pools.get(server.port)
        if pool is None:
            pool = self.pools[server.port] = Pool(Upstream(backend.key, "127.0.0.1", server.port))
        started = time.perf_counter()
        try:
            response = await pool.exchange(upstream, float(60))
        except BackendError as exc:  # no pod answered: Envoy's 503, counted nowhere
            return 503, error(call, f"upstream connect error or disconnect/reset: {exc}")
        seconds = time.perf_counter() - started
        if backend.metric_labels:  # none: no proxy beside the pod counts (KServe Standard)
            self.plane.metrics.observe(
                route.platform, backend.metric_labels, response.status, seconds, asked
            )
        try:
            result = json.loads(response.payload())
        except ValueError:
            return 502, error(call, f"backend {backend.key} answered no JSON")
        if not 200 <= response.status < 300:
            detail = result.get("message") if isinstance(result, dict) else None
            return response.status, error(call, str(detail or result))
        predictions = result.get("predictions") if isinstance(result, dict) else result
        return response.status, answer(call, asked, predictions)

    def _start_mirror(
        self, route: Route, mirror: Backend, call: Call, rows: list[list[Any]], asked: str
    ) -> None:
        if len(self.mirrors) >= MAX_MIRRORS_IN_FLIGHT:
            self.mirrors_dropped += 1
            return
        copy = self._mirror(route, mirror, call, rows, asked)
        task = asyncio.get_running_loop().create_task(copy)
        self.mirrors.add(task)
        task.add_done_callback(self.mirrors.discard)

    async def _mirror(
        self, route: Route, mirror: Backend, call: Call, rows: list[list[Any]], asked: str
    ) -> None:
        await asyncio.sleep(0)  # after the client's answer is written
        await self.exchange(route, mirror, call, rows, asked)


class IngressThread:
    """The ingress and the metrics endpoint on one event loop in a daemon thread."""

    def __init__(self, plane: DataPlane) -> None:
        self.ingress = Ingress(plane)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ingress")
        self._thread.start()
        self._servers: list[asyncio.Server] = []
        ports = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{ports[0]}"
        self.metrics_url = f"http://127.0.0.1:{ports[1]}{METRICS_PATH}"

    async def _start(self) -> list[int]:
        for handler in (self.ingress.serve, self.ingress.serve_metrics):
            server = await asyncio.start_server(handler, "127.0.0.1", 0, limit=MAX_HEAD)
            self._servers.append(server)
        return [int(s.sockets[0].getsockname()[1]) for s in self._servers]

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # open client connections and mirror copies
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for pool in self.ingress.pools.values():
            pool.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
