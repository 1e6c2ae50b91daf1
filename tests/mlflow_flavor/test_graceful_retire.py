"""A retiring scoring server ends keep-alive connections cleanly: real uvicorn (both of its
HTTP implementations) serving a tiny ASGI app, with `graceful.install()` applied, as the
scoring servers of the local flavor are."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from modeldeploy.flavors.mlflow import graceful


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@dataclass
class Running:
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    port: int


@contextmanager
def _serving(
    implementation: str, monkeypatch: pytest.MonkeyPatch, loop_kind: str = "asyncio"
) -> Iterator[Running]:
    """uvicorn on its own event loop in a thread, as patched by `graceful.install()`;
    `loop_kind` "uvloop" is what the scoring servers run on (uvicorn's `--loop auto`)."""
    # Long enough that a loaded machine cannot turn the idle grace into a close under us.
    monkeypatch.setattr(graceful, "DRAIN_IDLE_SECONDS", 60.0)
    graceful.install()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, http=implementation, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    if loop_kind == "asyncio":
        loop = asyncio.new_event_loop()
    else:  # uvicorn uses it when installed (not a dependency of ours)
        loop = pytest.importorskip("uvloop").new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield Running(server, loop, thread, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        loop.close()


def _post(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("POST", "/invocations", b"{}")
    return conn.getresponse()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_next_request_on_an_idle_connection_is_answered_with_close(
    implementation: str, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _serving(implementation, monkeypatch, loop_kind) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        first = _post(conn)
        assert first.read() == b"ok" and first.getheader("connection") is None
        running.server.should_exit = True  # what SIGTERM does
        deadline = time.monotonic() + 30
        while not _refused(running.port):  # it stopped accepting: connections told to leave
            assert time.monotonic() < deadline, "uvicorn kept accepting"
            time.sleep(0.01)
        # The idle keep-alive connection is still open: the next request gets its answer,
        # told to close (uvicorn alone closes it at once, so this request would get none).
        last = _post(conn)
        assert last.status == 200 and last.read() == b"ok"
        assert last.getheader("connection") == "close"
        conn.close()
        running.thread.join(timeout=30)
        assert not running.thread.is_alive()  # and the server then exits


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_a_connection_accepted_as_it_begins_leaving_is_answered_and_told_to_close(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of a shared listening socket: a connection this server had just accepted
    when it was told to stop (asyncio registers it a loop iteration later) would be missed
    by uvicorn's goodbye, served as keep-alive until the supervisor kills the server under
    it, or dropped unanswered. Its loop is frozen while the connection arrives and the stop
    is asked for, so both land in the same iteration, whatever the machine's load. (That
    order is the standard loop's; uvloop, which the scoring servers run on, reads such a
    connection before it sees the stop, so answers it before leaving begins.)"""
    with _serving(implementation, monkeypatch) as running:
        frozen, thawed = threading.Event(), threading.Event()

        def freeze() -> None:
            frozen.set()
            thawed.wait(30)

        running.loop.call_soon_threadsafe(freeze)
        try:
            assert frozen.wait(30)
            conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
            conn.request("POST", "/invocations", b"{}")  # waits in the listen backlog
            running.server.should_exit = True  # what SIGTERM does
            time.sleep(0.2)  # past uvicorn's 0.1 s tick: it sees the stop in that iteration
        finally:
            thawed.set()
        with contextlib.closing(conn):
            answer = conn.getresponse()
            assert answer.status == 200 and answer.read() == b"ok"
            assert answer.getheader("connection") == "close"
        running.thread.join(timeout=30)
        assert not running.thread.is_alive()  # and the server then exits


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_a_request_whose_answer_had_begun_when_leaving_began_keeps_its_connection(
    implementation: str, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's head already went out (without `Connection: close`) when the server was
    told to stop, so the client will send its next request on this connection: that one is
    answered, told to close, instead of finding the connection closed under it."""
    with _serving(implementation, monkeypatch, loop_kind) as running:
        headed, release = threading.Event(), asyncio.Event()

        async def slow_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-length", b"2")]})
            headed.set()
            await release.wait()  # the server is told to stop between head and body
            await send({"type": "http.response.body", "body": b"ok"})

        monkeypatch.setattr(running.server.config, "loaded_app", slow_body)
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        conn.request("POST", "/invocations", b"{}")
        assert headed.wait(30)
        running.server.should_exit = True  # what SIGTERM does
        deadline = time.monotonic() + 30
        while not _refused(running.port):  # it is leaving: connections were told
            assert time.monotonic() < deadline, "uvicorn kept accepting"
            time.sleep(0.01)
        running.loop.call_soon_threadsafe(release.set)
        first = conn.getresponse()
        assert first.read() == b"ok" and first.getheader("connection") is None
        last = _post(conn)  # the same app; its body is no longer held
        assert last.status == 200 and last.read() == b"ok"
        assert last.getheader("connection") == "close"
        conn.close()
        running.thread.join(timeout=30)
        assert not running.thread.is_alive()
