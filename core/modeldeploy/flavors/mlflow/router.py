"""The traffic router of a local model server: an asyncio HTTP/1.1 reverse proxy.

Runs inside the supervisor (so it is stdlib-only) and only while a challenger exists:
single-variant servers keep MLflow's scoring server directly on the public socket. The
router accepts on the public socket and forwards each request over keep-alive connections
to the variants' scoring servers on private loopback ports:

- `POST /invocations` goes to the challenger with the table's weight (per request, or by a
  hash of a sticky header), else to the champion; every other path to the champion;
- a copy of a champion-routed request may be mirrored to the challenger after the client
  has its answer (`mirror_percent`); on a split step a sampled share of every variant's
  requests (`compare_percent`) is also copied to the OTHER variant, so agreement is
  measured on the same live requests whichever variant answered the client. A copy's
  answer is compared with the client's and then dropped;
- each scoring request carries an id (the client's `X-Request-Id`, else one is made and
  returned in the answer's `x-request-id` header); the last `PREDICTION_LOG_SIZE` answers
  (id, variant, answer) are kept in memory and served at `PREDICTIONS_PATH`, so delayed
  labels can be joined with them later;
- per-variant metrics in Prometheus text format are served at `METRICS_PATH`.

The supervisor swaps the routing table by assignment (one table per request) and drains
the router before it retires it: no new connections, each open one closes after its answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import random
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

METRICS_PATH = "/modeldeploy/metrics"
PREDICTIONS_PATH = "/modeldeploy/predictions"
REQUEST_ID_HEADER = "x-request-id"
PREDICTION_LOG_SIZE = 20_000  # answers kept for joining delayed labels (oldest dropped)
MAX_LOGGED_ANSWER = 16 * 1024  # larger answers are logged without their body
MAX_REQUEST_ID = 200
CHAMPION = "champion"
CHALLENGER = "challenger"
BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
    0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
MAX_MIRRORS_IN_FLIGHT = 64
POOL_IDLE_SECONDS = 2.0  # below uvicorn's 5 s keep-alive timeout, so a pooled one is alive
MAX_HEAD = 64 * 1024
DRAIN_IDLE_SECONDS = 2.0  # how long a draining router waits for idle clients to send again
#: loop iterations from accepting a connection to its handler's first step (asyncio: the
#: accept, the transport's task, `connection_made`, the handler's task), with a margin
ACCEPT_ITERATIONS = 5
REL_TOL, ABS_TOL = 1e-6, 1e-9
_NO_BODY_STATUS = (204, 304)


class BackendError(Exception):
    """No answer from a variant (refused, reset, timed out, or a broken response)."""


@dataclass(frozen=True)
class Backend:
    name: str  # the variant: champion or challenger
    host: str
    port: int


@dataclass(frozen=True)
class Table:
    """One consistent routing decision for every request that reads it."""

    champion: Backend
    challenger: Backend | None = None
    weight: int = 0  # percent of /invocations to the challenger
    mirror_percent: int = 0  # percent of champion-routed /invocations copied to challenger
    #: on a split (weight > 0), percent of each variant's /invocations copied to the other
    compare_percent: int = 0
    sticky_header: str | None = None
    timeout: float = 60.0

    def pick(self, sticky: bytes | None) -> Backend:
        if self.challenger is None or self.weight <= 0:
            return self.champion
        # A sticky key keeps its bucket as the weight grows: who saw the challenger at 10 %
        # still sees it at 50 %.
        bucket = zlib.crc32(sticky) % 100 if sticky is not None else int(random.random() * 100)
        return self.challenger if bucket < self.weight else self.champion

    def copy_to(self, served: Backend) -> Backend | None:
        """The other variant, for a sampled copy of a request `served` answered: mirrors
        of champion-routed requests, and on a split step comparisons both ways."""
        if self.challenger is None:
            return None
        compare = self.compare_percent if self.weight > 0 else 0
        if served is self.champion:
            other, percent = self.challenger, max(self.mirror_percent, compare)
        else:
            other, percent = self.champion, compare
        return other if percent > 0 and random.random() * 100 < percent else None


@dataclass
class Request:
    method: str
    target: str
    head: bytes  # the request line and headers as received, ending in a blank line
    body: bytes
    keep_alive: bool
    headers: dict[bytes, bytes]  # lower-case names

    def header(self, name: str | None) -> bytes | None:
        return self.headers.get(name.lower().encode()) if name else None

    def ensure_id(self) -> str:
        """The client's request id if it sent a usable one, else a new one added to the
        head, so the variants (and their logs) see the same id."""
        given = self.headers.get(REQUEST_ID_HEADER.encode(), b"")
        if 0 < len(given) <= MAX_REQUEST_ID and all(0x21 <= c <= 0x7E for c in given):
            return given.decode()
        made = uuid.uuid4().hex
        self.headers[REQUEST_ID_HEADER.encode()] = made.encode()
        kept = b"".join(
            line + b"\r\n"
            for line in self.head[:-4].split(b"\r\n")
            if not line.lower().startswith(REQUEST_ID_HEADER.encode() + b":")
        )
        self.head = kept + REQUEST_ID_HEADER.encode() + b": " + made.encode() + b"\r\n\r\n"
        return made


@dataclass
class Response:
    status: int
    head: bytes
    body: bytes  # as sent on the wire (possibly chunked)
    reusable: bool
    chunked: bool = False

    def payload(self) -> bytes:
        return _dechunk(self.body) if self.chunked else self.body


@dataclass(frozen=True)
class Logged:
    """One answer a variant gave, kept for joining delayed labels."""

    at: float  # wall clock: read by other processes
    request_id: str
    variant: str
    status: int
    mirror: bool
    answer: bytes | None  # the JSON body; None when not 2xx or too large

    def line(self) -> bytes:
        """A JSON line; the answer is embedded as the scoring server wrote it (JSON), so
        reading the log costs the router no parsing."""
        return (
            (
                f'{{"at": {self.at!r}, "request_id": {json.dumps(self.request_id)}, '
                f'"variant": "{self.variant}", "status": {self.status}, '
                f'"mirror": {"true" if self.mirror else "false"}, "answer": '
            ).encode()
            + (self.answer or b"null")
            + b"}\n"
        )


class PredictionLog:
    """A bounded ring of the latest answers, oldest first; lines are made only when read."""

    def __init__(self, size: int = PREDICTION_LOG_SIZE) -> None:
        self.entries: deque[Logged] = deque(maxlen=size)

    def add(self, request_id: str, variant: str, response: Response, mirror: bool) -> None:
        ok = 200 <= response.status < 300 and len(response.body) <= MAX_LOGGED_ANSWER
        answer = response.payload().strip() if ok else None
        self.entries.append(
            Logged(time.time(), request_id, variant, response.status, mirror, answer or None)
        )

    def render(self, since: float) -> bytes:
        lines = []
        for entry in reversed(self.entries):  # newest first: stop at the window's start
            if entry.at < since:
                break
            lines.append(entry.line())
        return b"".join(reversed(lines))


@dataclass
class Metrics:
    """Counters and histograms kept by the event loop's thread only."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    buckets: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    sums: dict[tuple[str, str], float] = field(default_factory=dict)
    agreement: dict[tuple[str, str], int] = field(default_factory=dict)
    mirrors_dropped: int = 0

    def observe(self, variant: str, code: int, mirror: bool, seconds: float) -> None:
        flag = "true" if mirror else "false"
        key = (variant, str(code), flag)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.buckets.setdefault((variant, flag), [0] * (len(BUCKETS) + 1))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                hist[i] += 1
                break
        else:
            hist[-1] += 1
        self.sums[(variant, flag)] = self.sums.get((variant, flag), 0.0) + seconds

    def compare(self, variant: str, agree: bool) -> None:
        key = (variant, "agree" if agree else "disagree")
        self.agreement[key] = self.agreement.get(key, 0) + 1

    def render(self, table: Table) -> bytes:
        out = [
            "# HELP modeldeploy_requests_total Requests answered per variant and status code.",
            "# TYPE modeldeploy_requests_total counter",
        ]
        for (variant, code, flag), n in sorted(self.requests.items()):
            out.append(
                f'modeldeploy_requests_total{{variant="{variant}",code="{code}",'
                f'mirror="{flag}"}} {n}'
            )
        out += [
            "# HELP modeldeploy_request_duration_seconds Time from forwarding to the answer.",
            "# TYPE modeldeploy_request_duration_seconds histogram",
        ]
        for (variant, flag), hist in sorted(self.buckets.items()):
            labels = f'variant="{variant}",mirror="{flag}"'
            running = 0
            for bound, n in zip((*BUCKETS, math.inf), hist, strict=True):
                running += n
                le = "+Inf" if bound == math.inf else repr(bound)
                out.append(
                    f'modeldeploy_request_duration_seconds_bucket{{{labels},le="{le}"}} {running}'
                )
            out.append(
                f"modeldeploy_request_duration_seconds_sum{{{labels}}} "
                f"{self.sums[(variant, flag)]!r}"
            )
            out.append(f"modeldeploy_request_duration_seconds_count{{{labels}}} {running}")
        out += [
            "# HELP modeldeploy_agreement_total Copies: the challenger's answer vs the champion's.",
            "# TYPE modeldeploy_agreement_total counter",
        ]
        for (variant, result), n in sorted(self.agreement.items()):
            out.append(f'modeldeploy_agreement_total{{variant="{variant}",result="{result}"}} {n}')
        out += [
            "# HELP modeldeploy_mirror_dropped_total Mirror copies skipped (too many in flight).",
            "# TYPE modeldeploy_mirror_dropped_total counter",
            f"modeldeploy_mirror_dropped_total {self.mirrors_dropped}",
            "# HELP modeldeploy_variant_weight Percent of requests routed to each variant.",
            "# TYPE modeldeploy_variant_weight gauge",
            f'modeldeploy_variant_weight{{variant="{CHAMPION}"}} '
            f"{100 - table.weight if table.challenger else 100}",
        ]
        if table.challenger is not None:
            out.append(f'modeldeploy_variant_weight{{variant="{CHALLENGER}"}} {table.weight}')
        out += [
            "# HELP modeldeploy_mirror_percent Percent of champion requests mirrored.",
            "# TYPE modeldeploy_mirror_percent gauge",
            f"modeldeploy_mirror_percent {table.mirror_percent if table.challenger else 0}",
        ]
        return ("\n".join(out) + "\n").encode()


def answers_agree(challenger: Any, champion: Any) -> bool:
    """Equal JSON answers, numbers within a relative tolerance, containers element-wise."""
    if isinstance(challenger, bool) or isinstance(champion, bool):
        return type(challenger) is type(champion) and challenger == champion
    if isinstance(challenger, (int, float)) and isinstance(champion, (int, float)):
        return math.isclose(challenger, champion, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(challenger, list) and isinstance(champion, list):
        return len(challenger) == len(champion) and all(
            answers_agree(a, b) for a, b in zip(challenger, champion, strict=True)
        )
    if isinstance(challenger, dict) and isinstance(champion, dict):
        return challenger.keys() == champion.keys() and all(
            answers_agree(challenger[k], champion[k]) for k in challenger
        )
    return bool(challenger == champion)


# -- HTTP/1.1 framing -----------------------------------------------------------------


def _headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    found: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return lines[0], found


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """The chunked body exactly as sent (sizes, data, trailers)."""
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                parts.append(trailer)
                if trailer == b"\r\n":
                    return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))


def _dechunk(raw: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(raw[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    line, headers = _headers(head)
    parts = line.split(b" ")
    if len(parts) != 3:
        raise ValueError("malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    connection = headers.get(b"connection", b"").lower()
    keep_alive = (version == "HTTP/1.1" and connection != b"close") or connection == b"keep-alive"
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    expect = headers.get(b"expect", b"").lower() == b"100-continue"
    if expect:  # curl asks so for bodies over 1 KiB and would wait a second otherwise
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if chunked:
        body = _dechunk(await _read_chunked(reader))
    else:
        length = int(headers.get(b"content-length", b"0"))
        body = await reader.readexactly(length) if length else b""
    if chunked or expect:  # the scoring server gets a plain request with a known length
        kept = [
            ln
            for ln in head[:-4].split(b"\r\n")
            if not ln.lower().startswith((b"transfer-encoding:", b"content-length:", b"expect:"))
        ]
        head = b"\r\n".join([*kept, b"Content-Length: %d" % len(body)]) + b"\r\n\r\n"
    return Request(method, target, head, body, keep_alive, headers)


async def read_response(reader: asyncio.StreamReader, method: str) -> Response:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        line, headers = _headers(head)
        status = int(line.split(b" ", 2)[1])
        if not 100 <= status < 200:
            break  # interim answers (100 Continue) are not forwarded
    reusable = headers.get(b"connection", b"").lower() != b"close"
    if method == "HEAD" or status in _NO_BODY_STATUS:
        return Response(status, head, b"", reusable)
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return Response(status, head, await _read_chunked(reader), reusable, chunked=True)
    if b"content-length" in headers:
        return Response(
            status, head, await reader.readexactly(int(headers[b"content-length"])), reusable
        )
    return Response(status, head, await reader.read(), False)


def _says_close(head: bytes) -> bool:
    return _headers(head)[1].get(b"connection", b"").lower() == b"close"


def _simple_response(status: int, reason: str, body: bytes, content_type: str) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


# -- the proxy ------------------------------------------------------------------------


class Pool:
    """Idle keep-alive connections to one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def exchange(self, request: Request, timeout: float) -> Response:
        """Send one request and read its answer; retried once on a fresh connection if a
        pooled one turns out closed before any byte of the answer came back."""
        while True:
            fresh = True
            conn = None
            now = time.monotonic()
            while self.idle:
                reader, writer, since = self.idle.pop()
                if now - since < POOL_IDLE_SECONDS and not reader.at_eof():
                    conn, fresh = (reader, writer), False
                    break
                writer.close()
            try:
                async with asyncio.timeout(timeout):  # no task per request, unlike wait_for
                    if conn is None:
                        conn = await asyncio.open_connection(self.backend.host, self.backend.port)
                        sock = conn[1].get_extra_info("socket")
                        if sock is not None:
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    reader, writer = conn
                    writer.write(request.head + request.body)
                    response = await read_response(reader, request.method)
            except (TimeoutError, ValueError, IndexError) as exc:  # before OSError: a subclass
                if conn is not None:
                    conn[1].close()
                raise BackendError(f"{self.backend.name}: {exc!r}") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                if conn is not None:
                    conn[1].close()
                if fresh:
                    raise BackendError(f"{self.backend.name}: {exc!r}") from None
                continue  # a pooled connection the backend had closed: once more, fresh
            if response.reusable and request.keep_alive:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return response

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


class Router:
    """The proxy itself; everything here runs on one event loop."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.metrics = Metrics()
        self.predictions = PredictionLog()
        self.pools: dict[Backend, Pool] = {}
        self.server: asyncio.Server | None = None
        self.connections: dict[asyncio.StreamWriter, bool] = {}  # writer -> busy
        self.mirrors: set[asyncio.Task[None]] = set()
        self.draining = False
        self.drained = asyncio.Event()

    async def start(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_server(self._serve, sock=sock, limit=MAX_HEAD)

    def pool(self, backend: Backend) -> Pool:
        pool = self.pools.get(backend)
        if pool is None:
            pool = self.pools[backend] = Pool(backend)
            live = {self.table.champion, self.table.challenger}
            for stale in [b for b in self.pools if b not in live]:
                self.pools.pop(stale).close()
        return pool

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections[writer] = False
        try:
            # A connection accepted as the drain began still has its request answered
            # (with `connection: close`); the drain closes it if it stays silent.
            while True:
                try:
                    request = await read_request(reader, writer)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                except ValueError:
                    writer.write(_simple_response(400, "Bad Request", b"", "text/plain"))
                    return
                self.connections[writer] = True
                await self._handle(request, writer)
                self.connections[writer] = False
                if not request.keep_alive or self.draining:
                    return
        except OSError:
            return
        finally:
            self.connections.pop(writer, None)
            with contextlib.suppress(OSError):
                writer.close()
            if self.draining and not self.connections:
                self.drained.set()

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        path, _, query = request.target.partition("?")
        if path in (METRICS_PATH, PREDICTIONS_PATH):
            if path == METRICS_PATH:
                body, kind = self.metrics.render(self.table), "text/plain; version=0.0.4"
            else:
                since = _float(parse_qs(query).get("since", ["0"])[0])
                body, kind = self.predictions.render(since), "application/x-ndjson"
            writer.write(_simple_response(200, "OK", body, kind))
            await writer.drain()
            return
        table = self.table
        scoring = path == "/invocations" and request.method == "POST"
        request_id = request.ensure_id() if scoring else None
        backend = table.pick(request.header(table.sticky_header)) if scoring else table.champion
        started = time.perf_counter()
        try:
            response = await self.pool(backend).exchange(request, table.timeout)
        except BackendError:
            if scoring:
                self.metrics.observe(backend.name, 502, False, time.perf_counter() - started)
            if backend is table.champion:
                writer.write(_simple_response(502, "Bad Gateway", b"", "text/plain"))
                await writer.drain()
                return
            # The challenger gave no answer at all: the client gets the champion's.
            backend = table.champion
            started = time.perf_counter()
            try:
                response = await self.pool(backend).exchange(request, table.timeout)
            except BackendError:
                self.metrics.observe(backend.name, 502, False, time.perf_counter() - started)
                writer.write(_simple_response(502, "Bad Gateway", b"", "text/plain"))
                await writer.drain()
                return
        head = response.head
        if request_id is not None:
            self.metrics.observe(
                backend.name, response.status, False, time.perf_counter() - started
            )
            self.predictions.add(request_id, backend.name, response, mirror=False)
            head = head[:-2] + b"%s: %s\r\n\r\n" % (
                REQUEST_ID_HEADER.encode(),
                request_id.encode(),
            )
        if self.draining and not _says_close(head):
            head = head[:-2] + b"connection: close\r\n\r\n"
        writer.write(head + response.body)
        await writer.drain()
        if request_id is not None:
            target = table.copy_to(backend)
            if target is not None:
                self._start_mirror(
                    self._mirror(target, request, request_id, backend, response, table.timeout)
                )

    def _start_mirror(self, copy: Coroutine[Any, Any, None]) -> None:
        if len(self.mirrors) >= MAX_MIRRORS_IN_FLIGHT:
            self.metrics.mirrors_dropped += 1
            copy.close()
            return
        task = asyncio.get_running_loop().create_task(copy)
        self.mirrors.add(task)
        task.add_done_callback(self.mirrors.discard)

    async def _mirror(
        self,
        target: Backend,
        request: Request,
        request_id: str,
        served: Backend,
        answer: Response,
        timeout: float,
    ) -> None:
        """Send a copy to `target` off the client's path; compare its answer with the one
        `served` gave the client, judging the challenger's against the champion's."""
        started = time.perf_counter()
        try:
            response = await self.pool(target).exchange(request, timeout)
        except BackendError:
            self.metrics.observe(target.name, 502, True, time.perf_counter() - started)
            return
        self.metrics.observe(target.name, response.status, True, time.perf_counter() - started)
        self.predictions.add(request_id, target.name, response, mirror=True)
        if 200 <= response.status < 300 and 200 <= answer.status < 300:
            pair = (response, answer) if served.name == CHAMPION else (answer, response)
            self.metrics.compare(CHALLENGER, _same_answer(*pair))

    async def drain(self) -> None:
        """Stop accepting; each open connection closes once its request is answered.

        The public socket is shared, so a connection may have just been accepted: asyncio
        sets it up over the next loop iterations (and drops it unanswered if the server
        closes first). So stop accepting, let those connections arrive, then close."""
        self.draining = True
        if self.server is not None:
            loop = asyncio.get_running_loop()
            for listener in self.server.sockets:
                loop.remove_reader(listener.fileno())
            for _ in range(ACCEPT_ITERATIONS):
                await asyncio.sleep(0)
            self.server.close()  # closes our duplicate of the public socket, not the socket
        if self.connections:
            # A client that sends again soon gets its answer with `connection: close`, a
            # clean end; only connections still idle after that are closed under it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.drained.wait()), DRAIN_IDLE_SECONDS)
            for writer, busy in list(self.connections.items()):
                if not busy:
                    writer.close()
        if self.connections:
            await self.drained.wait()
        if self.mirrors:
            await asyncio.wait(list(self.mirrors))
        for pool in self.pools.values():
            pool.close()


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _same_answer(challenger: Response, champion: Response) -> bool:
    a, b = challenger.payload(), champion.payload()
    try:
        return answers_agree(json.loads(a), json.loads(b))
    except ValueError:
        return a == b


class RouterThread:
    """A Router on its own event loop in a daemon thread of the supervisor."""

    def __init__(self, sock: socket.socket, table: Table) -> None:
        self.loop = asyncio.new_event_loop()
        self.router = Router(table)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="router")
        self._thread.start()
        listener = sock.dup()  # the router may close its copy; the public socket stays
        asyncio.run_coroutine_threadsafe(self.router.start(listener), self.loop).result()
        self._drain: concurrent.futures.Future[None] | None = None

    @property
    def table(self) -> Table:
        return self.router.table

    def set_table(self, table: Table) -> None:
        self.router.table = table  # one assignment: every request reads one whole table

    @property
    def draining(self) -> bool:
        return self._drain is not None

    def begin_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.run_coroutine_threadsafe(self.router.drain(), self.loop)

    def drained(self) -> bool:
        return self._drain is not None and self._drain.done()

    def close(self, timeout: float = 10.0) -> None:
        self.begin_drain()
        assert self._drain is not None
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self._drain.result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2)
