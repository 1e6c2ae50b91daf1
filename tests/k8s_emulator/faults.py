"""Runtime fault injection and the request log, both driven by tests.

Faults model what clients meet on real clusters: slow API servers, throttling (429 with
Retry-After), 5xx from an overloaded or restarting control plane, and watch connections cut
by load balancers mid-stream. The RNG is seeded so a failing run can be reproduced.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _OneShot:
    code: int
    times: int
    method: str | None
    path_contains: str | None


class Faults:
    """Fault settings; every attribute can be changed while the emulator runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to a healthy server."""
        with self._lock:
            self.latency: float = 0.0
            self.error_rate: float = 0.0
            self.error_codes: tuple[int, ...] = (500, 503, 429)
            self.include_watch: bool = False
            self.drop_watch_after_events: int | None = None
            self.drop_watch_after_seconds: float | None = None
            self._seed: int | None = 0
            self._rng = random.Random(0)
            self._oneshots: list[_OneShot] = []

    @property
    def seed(self) -> int | None:
        return self._seed

    @seed.setter
    def seed(self, value: int | None) -> None:
        with self._lock:
            self._seed = value
            self._rng = random.Random(value)

    def inject(
        self,
        code: int,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``code`` (deterministic faults)."""
        with self._lock:
            self._oneshots.append(_OneShot(code, times, method, path_contains))

    def pick(self, method: str, path: str, is_watch: bool) -> int | None:
        """The injected status code for this request, or None to serve it normally."""
        with self._lock:
            for shot in self._oneshots:
                if shot.method and shot.method.upper() != method:
                    continue
                if shot.path_contains and shot.path_contains not in path:
                    continue
                shot.times -= 1
                if shot.times <= 0:
                    self._oneshots.remove(shot)
                return shot.code
            if self.error_rate <= 0 or (is_watch and not self.include_watch):
                return None
            if self._rng.random() < self.error_rate:
                return self._rng.choice(list(self.error_codes))
            return None


@dataclass
class RequestRecord:
    """One API request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    verb: str
    resource: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    duration: float
    time: float = field(default_factory=time.time)


class RequestLog:
    """Thread-safe list of requests with counting helpers for benchmarks and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RequestRecord] = []

    def add(self, rec: RequestRecord) -> None:
        with self._lock:
            self._items.append(rec)

    def reset(self) -> None:
        with self._lock:
            self._items.clear()

    clear = reset

    @property
    def entries(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Any:
        return iter(self.entries)

    def count(self, **match: Any) -> int:
        """Count records whose attributes equal ``match`` (e.g. ``verb="list"``)."""
        return sum(1 for r in self.entries if all(getattr(r, k) == v for k, v in match.items()))

    def by_verb(self) -> Counter[str]:
        return Counter(r.verb for r in self.entries)

    def by_status(self) -> Counter[int]:
        return Counter(r.status for r in self.entries)
