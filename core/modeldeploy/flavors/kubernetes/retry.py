"""Retries with backoff for transient API failures, and none for the caller's mistakes.

An overloaded or restarting API server answers 429, 500, 502, 503 or 504, or drops the
connection; the same request a moment later usually succeeds. A 4xx validation error
will fail the same way every time, so it is raised at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from modeldeploy.flavors.kubernetes.errors import api_status
from modeldeploy.redaction import get_logger
from modeldeploy.waiting import Deadline, current_deadline

logger = get_logger("modeldeploy.kubernetes")

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: throttling, server errors, dropped connections."""
    status = api_status(exc)
    if status is not None:
        return status in TRANSIENT_STATUS or status == 0
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (`Retry-After` on 429/503), if it said so."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class RetryPolicy:
    """Exponential backoff with full jitter, capped by attempts and by the caller's deadline."""

    def __init__(
        self,
        max_retries: int = 8,
        base: float = 0.05,
        cap: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_retries = max_retries
        self.base = base
        self.cap = cap
        self._sleep = sleep

    def backoff(self, attempt: int, exc: BaseException) -> float:
        hinted = retry_after(exc)
        if hinted is not None:
            return min(max(hinted, 0.0), self.cap)
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))

    def call(
        self,
        fn: Callable[..., T],
        *args: object,
        deadline: Deadline | None = None,
        what: str = "Kubernetes API call",
        **kwargs: object,
    ) -> T:
        deadline = deadline or current_deadline()
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not is_transient(exc) or attempt >= self.max_retries:
                    raise
                delay = self.backoff(attempt, exc)
                if deadline is not None and deadline.remaining() <= delay:
                    raise
                attempt += 1
                logger.debug(
                    "%s failed (%s); retry %d/%d in %.3fs",
                    what,
                    api_status(exc) or type(exc).__name__,
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)
