"""`watch_until` for an event loop: the same contract, no thread held while waiting.

GET, judge, watch from the resourceVersion (or the version `start_from` names) with a name
field selector, judge every event; 410 Gone re-reads and watches again; the deadline bounds
every step (`asyncio.timeout`), so it holds even when no event ever arrives. Cancelling the
awaiting task closes the watch connection at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from modeldeploy.errors import ModelDeployError, ModelServerNotFoundError
from modeldeploy.flavors.kubernetes.aio import AsyncResources
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.retry import is_transient
from modeldeploy.flavors.kubernetes.watching import READ_SLACK, WatchTimeout, _version
from modeldeploy.waiting import Deadline

logger = logging.getLogger("modeldeploy.kubernetes")

T = TypeVar("T")


async def watch_until_async(
    aio: AsyncResources,
    name: str,
    judge: Callable[[dict[str, Any] | None, bool], T | None],
    deadline: Deadline,
    start_from: Callable[[dict[str, Any]], str | None] | None = None,
    on_gone: Callable[[], None] | None = None,
    recheck: Callable[[dict[str, Any] | None], float | None] | None = None,
) -> T:
    """Return the first non-None `judge(obj, from_event)`; see `watching.watch_until`.

    `judge` runs on a borrowed pool thread, one call at a time: a flavor's judge may read
    pods or a child Deployment (its second opinion), which must not block the event loop.
    `recheck(obj)` names how long a watch window lasts for the object last seen (None: until
    the deadline); after it, the object is judged afresh, as in `watch_until`. Per object,
    because only some states need it (a Standard-mode rollout), and 500 waits re-reading
    every second would load the API server for nothing. Raises `WatchTimeout` when the
    deadline passes first.
    """
    try:
        async with asyncio.timeout(deadline.remaining()):
            return await _watch(aio, name, judge, deadline, start_from, on_gone, recheck)
    except TimeoutError:
        raise WatchTimeout() from None


async def _watch(
    aio: AsyncResources,
    name: str,
    judge: Callable[[dict[str, Any] | None, bool], T | None],
    deadline: Deadline,
    start_from: Callable[[dict[str, Any]], str | None] | None,
    on_gone: Callable[[], None] | None,
    recheck_for: Callable[[dict[str, Any] | None], float | None] | None,
) -> T:
    where = aio.resources.where(name)
    obj = await _get(aio, name)
    result = await asyncio.to_thread(judge, obj, False)
    if result is not None:
        return result
    if obj is None:
        raise ModelServerNotFoundError(f"{where} does not exist")
    version = (start_from(obj) if start_from else None) or _version(obj)
    retry = aio.resources.kube.retry
    attempt = 0
    while True:
        remaining = deadline.remaining()
        recheck = recheck_for(obj) if recheck_for is not None else None
        window = remaining if recheck is None else max(1.0, min(remaining, recheck))
        events = 0
        try:
            async for event in aio.watch(
                name, version, max(1, math.ceil(window)), window + READ_SLACK
            ):
                events += 1
                attempt = 0
                current = event.get("object")
                if not isinstance(current, dict):
                    continue
                version = _version(current) or version
                if event.get("type") == "BOOKMARK":
                    continue
                obj = current
                gone = event.get("type") == "DELETED"
                result = await asyncio.to_thread(judge, None if gone else current, True)
                if result is not None:
                    return result
            if recheck is not None:  # the window ended: judge afresh (pods, Deployments)
                obj = await _get(aio, name)
                result = await asyncio.to_thread(judge, obj, False)
                if result is not None:
                    return result
                continue
            if events == 0:
                await asyncio.sleep(retry.backoff(attempt, RuntimeError()))
                attempt += 1
        except ModelDeployError:
            raise
        except Exception as exc:
            status = api_status(exc)
            if status == 410:
                logger.debug("watch of %s expired (410 Gone); re-reading it", name)
                if on_gone is not None:
                    on_gone()
                obj = await _get(aio, name)
                result = await asyncio.to_thread(judge, obj, False)
                if result is not None:
                    return result
                version = (_version(obj) if obj is not None else "") or version
                continue
            if status is not None and not is_transient(exc):
                raise translate(exc, f"watching {where}", aio.host) from None
            if recheck is not None:  # a read timeout ends a recheck window too
                obj = await _get(aio, name)
                result = await asyncio.to_thread(judge, obj, False)
                if result is not None:
                    return result
                continue
            logger.debug("watch of %s interrupted (%s); resuming", name, status or exc)
            await asyncio.sleep(retry.backoff(attempt, exc))
            attempt += 1


async def _get(aio: AsyncResources, name: str) -> dict[str, Any] | None:
    return await retrying(aio, lambda: aio.get(name), f"reading {aio.resources.where(name)}")


async def retrying(aio: AsyncResources, call: Callable[[], Awaitable[T]], doing: str) -> T:
    """`call()` with the deployer's retry policy for transient errors; others translated."""
    retry = aio.resources.kube.retry
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc) or attempt >= retry.max_retries:
                raise translate(exc, doing, aio.host) from None
            await asyncio.sleep(retry.backoff(attempt, exc))
            attempt += 1
