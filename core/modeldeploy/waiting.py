"""One deadline on a monotonic clock, shared by every wait of an operation."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar

from modeldeploy.errors import InvalidConfigError

DEFAULT_TIMEOUT = 300.0


def check_timeout(timeout: float | None, *, name: str = "timeout") -> float:
    """Refuse negative or non-finite timeouts before anything is changed."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{name} must be a number of seconds, got {timeout!r}") from None
    if math.isnan(value) or value < 0:
        raise InvalidConfigError(f"{name} must be zero or more seconds, got {timeout!r}")
    return value


class Deadline:
    """A point in monotonic time; `remaining()` never goes below zero."""

    __slots__ = ("_end", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = check_timeout(timeout)
        self._end = time.monotonic() + self.timeout

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout}, remaining={self.remaining():.3f})"


_current: ContextVar[Deadline | None] = ContextVar("modeldeploy_deadline", default=None)


@contextlib.contextmanager
def within(deadline: Deadline, *, override: bool = False) -> Iterator[Deadline]:
    """Make `deadline` the one that platform calls inside honour (their request timeouts
    and retries), even where no deadline is passed down. The tighter of nested ones wins,
    unless `override` (clean-up after a failure has a budget of its own)."""
    outer = _current.get()
    if not override and outer is not None and outer.remaining() < deadline.remaining():
        deadline = outer
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the operation in progress in this context, if any."""
    return _current.get()
