"""A retiring scoring server ends keep-alive connections cleanly: real uvicorn (both of its
HTTP implementations) serving a tiny ASGI app, with `graceful.install()` applied, as the
scoring servers of the local flavor are."""

from __future__ import annotations

import http.client
import socket
import threading
import time
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


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_next_request_on_an_idle_connection_is_answered_with_close(
    implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that a loaded machine cannot turn the idle grace into a close under us.
    monkeypatch.setattr(graceful, "DRAIN_IDLE_SECONDS", 60.0)
    graceful.install()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_app, http=implementation, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/invocations", b"{}")
        first = conn.getresponse()
        assert first.read() == b"ok" and first.getheader("connection") is None
        server.should_exit = True  # what SIGTERM does
        while not _refused(port):  # it stopped accepting: connections were told to leave
            assert time.monotonic() < deadline, "uvicorn kept accepting"
            time.sleep(0.01)
        # The idle keep-alive connection is still open: the next request gets its answer,
        # told to close (uvicorn alone closes it at once, so this request would get none).
        conn.request("POST", "/invocations", b"{}")
        last = conn.getresponse()
        assert last.status == 200 and last.read() == b"ok"
        assert last.getheader("connection") == "close"
        conn.close()
        thread.join(timeout=30)
        assert not thread.is_alive()  # and the server then exits
    finally:
        server.should_exit = True
        thread.join(timeout=30)
