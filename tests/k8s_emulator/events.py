"""Core v1 Events, written the way client-go's ``record.EventRecorder`` writes them.

Controllers call ``record``; ``kubectl describe`` finds them with its
``involvedObject.{name,namespace,uid}`` field selector, ``kubectl get events`` lists them.
A repeat of the same (object, type, reason, message) bumps ``count`` and
``lastTimestamp`` like the recorder's aggregation.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .store import clone, now_ts

if TYPE_CHECKING:
    from .resources import ResourceType
    from .store import Store


def record(
    store: Store,
    rt: ResourceType,
    obj: dict[str, Any],
    etype: str,
    reason: str,
    message: str,
    component: str,
) -> None:
    events_rt = store.registry.by_key("/events")
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    for ev in store.iter_objects(events_rt, ns):
        inv = ev.get("involvedObject") or {}
        if (
            inv.get("uid") == meta.get("uid")
            and ev.get("reason") == reason
            and ev.get("type") == etype
            and ev.get("message") == message
        ):
            body = clone(ev)
            body["count"] = int(ev.get("count") or 1) + 1
            body["lastTimestamp"] = now_ts()
            with contextlib.suppress(ApiError):
                store.update(events_rt, ns, ev["metadata"]["name"], body)
            return
    ts = now_ts()
    store.create(
        events_rt,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}"},
            "involvedObject": {
                "kind": rt.kind,
                "namespace": ns,
                "name": meta["name"],
                "uid": meta.get("uid"),
                "apiVersion": rt.api_version,
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        },
    )
