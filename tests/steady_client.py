"""A steady HTTP client for zero-failure checks: one keep-alive connection, requests back to
back, every answer checked, from a thread of the test.

Like urllib3 and browsers do for a request that got no byte of answer because the server
closed an idle keep-alive connection as it left, it reconnects and sends once more (counted
in `retried`); anything else (an error status, a refused connection, a timeout) is a failure.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

CLIENT_TIMEOUT = 120.0


class SteadyClient:
    def __init__(
        self, port: int, body: bytes, accept: Callable[[int, bytes], bool] | None = None
    ) -> None:
        self.port, self.body = port, body
        self.accept = accept or (lambda status, _answer: status == 200)
        self.sent = self.failed = self.retried = 0
        self.failures: list[str] = []
        self.failed_since: list[float] = []  # time.monotonic() each failed request began
        self.answers: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyClient:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=CLIENT_TIMEOUT + 5)

    def _connect(self) -> http.client.HTTPConnection:
        # generous: a loaded CI machine can take tens of seconds to start a scoring server,
        # and what these tests judge is whether a request fails, not how fast it is answered
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _post(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        conn.request("POST", "/invocations", self.body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            ok, answer, began = False, b"", time.monotonic()
            try:
                if conn is None:
                    conn = self._connect()
                try:
                    status, answer = self._post(conn)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    conn = self._connect()
                    self.retried += 1
                    status, answer = self._post(conn)
                ok = self.accept(status, answer)
                detail = f"{status} {answer[:200]!r}"
            except OSError as exc:
                detail = repr(exc)
                if conn is not None:
                    conn.close()
                conn = None
            self.sent += 1
            if ok:
                self.answers.append(answer)
            else:
                self.failed += 1
                self.failures.append(detail)
                self.failed_since.append(began)
        if conn is not None:
            conn.close()
