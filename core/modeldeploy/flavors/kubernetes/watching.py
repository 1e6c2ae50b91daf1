"""Wait for one object by watching it, with one deadline that holds even when nothing happens.

GET the object, judge it, then watch from its resourceVersion with a `metadata.name` field
selector and judge every event. The watch asks the server to end by the deadline
(`timeoutSeconds`) and the socket read times out at the deadline too, so a silent or hung
connection cannot make us overshoot. A 410 Gone (our resourceVersion was compacted away)
re-reads the object and watches from its new version; a dropped stream resumes from the
last version seen; transient API errors back off and retry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from modeldeploy.errors import ModelDeployError, ModelServerNotFoundError
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.resources import CustomResources
from modeldeploy.flavors.kubernetes.retry import is_transient
from modeldeploy.redaction import get_logger
from modeldeploy.waiting import Deadline

logger = get_logger("modeldeploy.kubernetes")

T = TypeVar("T")

# The read timeout ends a silent watch this long after the deadline at the latest.
READ_SLACK = 0.05


class WatchTimeout(Exception):
    """The deadline passed before the judge was satisfied; the caller words the error."""


def watch_until(
    resources: CustomResources,
    name: str,
    judge: Callable[[dict[str, Any] | None, bool], T | None],
    deadline: Deadline,
    start_from: Callable[[dict[str, Any]], str | None] | None = None,
    on_gone: Callable[[], None] | None = None,
    recheck: float | None = None,
) -> T:
    """Return the first non-None `judge(obj, from_event)`; `obj` is None once it is gone.

    `judge` may raise to stop waiting (a terminal failure is reported at once).
    `start_from(obj)` may name an older resourceVersion to replay events from (None: the
    version just read); `on_gone()` is told when such history was compacted away (410).
    Raises `WatchTimeout` when the deadline passes first.
    """
    obj = resources.get(name, deadline)
    result = judge(obj, False)
    if result is not None:
        return result
    if obj is None:
        raise ModelServerNotFoundError(f"{resources.where(name)} does not exist")
    version = (start_from(obj) if start_from else None) or _version(obj)
    attempt = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise WatchTimeout()
        events = 0
        # With `recheck`, each watch ends after that long and the object is judged afresh,
        # for progress that shows elsewhere (pods, a child Deployment) before it shows here.
        window = remaining if recheck is None else max(1, math.ceil(min(remaining, recheck)))
        try:
            for event in resources.watch(
                name,
                version,
                timeout_seconds=max(1, math.ceil(window)),
                read_timeout=min(window, remaining) + READ_SLACK,
            ):
                events += 1
                attempt = 0
                kind = event.get("type")
                current = event.get("raw_object") or event.get("object")
                if not isinstance(current, dict):
                    continue
                if kind == "BOOKMARK":
                    version = _version(current) or version
                    continue
                version = _version(current) or version
                result = judge(None if kind == "DELETED" else current, True)
                if result is not None:
                    return result
                if deadline.expired:
                    raise WatchTimeout()
            # The server ended the watch (its timeout, or a dropped stream): resume from the
            # last version seen, backing off if streams keep ending without any event.
            if recheck is not None:
                obj = resources.get(name, deadline)
                result = judge(obj, False)
                if result is not None:
                    return result
                continue
            if events == 0 and deadline.remaining() > 0:
                _pause(resources.kube.retry.backoff(attempt, RuntimeError()), deadline)
                attempt += 1
        except (WatchTimeout, ModelDeployError):
            raise
        except Exception as exc:
            status = api_status(exc)
            if status == 410:
                logger.debug("watch of %s expired (410 Gone); re-reading it", name)
                if on_gone is not None:
                    on_gone()
                obj = resources.get(name, deadline)
                result = judge(obj, False)
                if result is not None:
                    return result
                if obj is not None:
                    version = _version(obj) or version
                continue
            if status is not None and not is_transient(exc):
                raise translate(exc, f"watching {resources.where(name)}") from None
            if deadline.expired:
                raise WatchTimeout() from None
            if recheck is not None:  # a read timeout ends a recheck window too
                obj = resources.get(name, deadline)
                result = judge(obj, False)
                if result is not None:
                    return result
                continue
            logger.debug("watch of %s interrupted (%s); resuming", name, status or exc)
            _pause(resources.kube.retry.backoff(attempt, exc), deadline)
            attempt += 1


def _pause(delay: float, deadline: Deadline) -> None:
    delay = min(delay, deadline.remaining())
    if delay > 0:
        time.sleep(delay)


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
