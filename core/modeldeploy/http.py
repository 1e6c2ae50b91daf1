"""A small JSON-over-HTTP client for `predict()`: keep-alive, TCP_NODELAY, one stale retry.

`requests` costs about a millisecond a call and 100 ms to import; predictions should cost
what the model server costs. Connections are kept per thread and per origin.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from modeldeploy.errors import PlatformError

# Failures that mean "the server closed this idle keep-alive connection as we sent":
# nothing was processed, so the request is sent once more on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class JsonClient:
    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self, scheme: str, netloc: str, fresh: bool) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {}
        )
        conn = pool.get((scheme, netloc))
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = factory(netloc, timeout=self.timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pool[(scheme, netloc)] = conn
        return conn

    def post_json(
        self, url: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        """POST and decode the JSON answer; errors quote the server's own message."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        for fresh in (False, True):
            try:
                conn = self._connection(parts.scheme, parts.netloc, fresh)
                conn.request("POST", target or "/", payload, all_headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except _STALE:
                if fresh:
                    raise PlatformError(f"{url} closed the connection without answering") from None
            except OSError as exc:
                raise PlatformError(
                    f"prediction request to {url} failed: {exc.strerror or exc}; check that the "
                    "model server is running and reachable from here"
                ) from None
        text = raw.decode(errors="replace")
        if response.status >= 400:
            raise PlatformError(f"{url} answered {response.status}: {_short(text)}")
        try:
            return json.loads(text)
        except ValueError:
            raise PlatformError(f"{url} answered with non-JSON: {_short(text)}") from None

    def close(self) -> None:
        for conn in self._local.__dict__.get("pool", {}).values():
            conn.close()
        self._local.__dict__.pop("pool", None)


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
