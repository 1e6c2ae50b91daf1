"""A loopback metrics endpoint serving the samples a test sets, in the Prometheus text
format, under any platform's metric names (a stand-in for a platform's exporter)."""

from __future__ import annotations

import http.server
import math
import threading
from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]


class Exposition:
    """`set` counters, `histogram` observations; Prometheus scrapes `url`."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, Labels], float] = {}
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/metrics"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        with self._lock:
            self._samples[(name, tuple(sorted(labels.items())))] = value

    def histogram(
        self,
        name: str,
        labels: Mapping[str, str],
        bounds: Iterable[float],
        observations: Iterable[float],
    ) -> None:
        """`name`_bucket/_count/_sum, cumulative, as a client library writes them."""
        seen = list(observations)
        for bound in [*bounds, math.inf]:
            le = "+Inf" if math.isinf(bound) else repr(float(bound))
            count = sum(1 for x in seen if x <= bound)
            self.set(f"{name}_bucket", {**labels, "le": le}, count)
        self.set(f"{name}_count", labels, len(seen))
        self.set(f"{name}_sum", labels, sum(seen))

    def text(self) -> str:
        with self._lock:
            items = sorted(self._samples.items())
        lines = []
        for (name, labels), value in items:
            pairs = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{pairs}}} {value!r}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
