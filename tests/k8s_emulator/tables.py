"""Server-side printing: ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``.

Custom resources get ``Name``, their CRD's ``additionalPrinterColumns`` (JSONPath, first
result, ``date`` columns as ages; apiextensions-apiserver ``pkg/registry/customresource/
tableconvertor``), or ``Name``/``Age`` when they declare none. Built-ins get the columns
kube-apiserver's printers (``pkg/printers/internalversion/printers.go``) show for them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

_NAME_COL = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COL = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
    "priority": 0,
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def age(ts: str | None, now: datetime | None = None) -> str:
    """apimachinery ``duration.HumanDuration`` of the time since ``ts``."""
    if not ts:
        return "<unknown>"
    then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    secs = int(((now or datetime.now(UTC)) - then).total_seconds())
    if secs < 0:
        return "<invalid>"
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 8:
        return f"{hours}h{mins % 60}m" if mins % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


_FILTER = re.compile(r"^\[\?\(@\.([\w.]+)\s*==\s*(.+)\)\]$")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The subset of kubectl JSONPath that CRD printer columns use: ``.a.b``,
    ``.a[?(@.k=='v')].b``, ``.a[0]``."""
    tokens = re.findall(r"\[[^\]]*\]|[^.\[\]]+", path.strip().lstrip("{").rstrip("}"))
    cur: list[Any] = [obj]
    for tok in tokens:
        nxt: list[Any] = []
        m = _FILTER.match(tok)
        for val in cur:
            if m:
                key, lit = m.group(1), m.group(2).strip()
                want: Any = (
                    lit[1:-1] if lit[:1] in "'\"" else {"true": True, "false": False}.get(lit, lit)
                )
                for item in val if isinstance(val, list) else []:
                    got: Any = item
                    for k in key.split("."):
                        got = got.get(k) if isinstance(got, dict) else None
                    if got == want or (isinstance(want, str) and str(got) == want):
                        nxt.append(item)
            elif tok.startswith("["):
                idx = tok[1:-1]
                if idx == "*":
                    nxt.extend(val if isinstance(val, list) else [])
                elif isinstance(val, list) and idx.lstrip("-").isdigit() and val:
                    i = int(idx)
                    if -len(val) <= i < len(val):
                        nxt.append(val[i])
            elif isinstance(val, dict) and tok in val:
                nxt.append(val[tok])
        cur = nxt
    return cur


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    cs = status.get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    reason = status.get("phase", "Pending")
    for c in status.get("initContainerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
            break
        if (c.get("state") or {}).get("running"):
            reason = "Init:0/1"
            break
    else:
        for c in cs:
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                reason = waiting["reason"]
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    restarts += sum(
        int(c.get("restartCount") or 0) for c in status.get("initContainerStatuses") or []
    )
    return [f"{ready}/{total}", reason, restarts]


def _builtin(rt: ResourceType) -> tuple[list[dict[str, Any]], Any]:
    def col(name: str, typ: str = "string") -> dict[str, Any]:
        return {"name": name, "type": typ, "format": "", "description": name, "priority": 0}

    if rt.kind == "Pod":
        return [col("Ready"), col("Status"), col("Restarts", "string")], _pod_cells
    if rt.kind == "Deployment":

        def dep(obj: dict[str, Any]) -> list[Any]:
            st = obj.get("status") or {}
            want = (obj.get("spec") or {}).get("replicas", 1)
            return [
                f"{st.get('readyReplicas', 0)}/{want}",
                st.get("updatedReplicas", 0),
                st.get("availableReplicas", 0),
            ]

        return [col("Ready"), col("Up-to-date", "integer"), col("Available", "integer")], dep
    if rt.kind == "Secret":
        return [col("Type"), col("Data", "integer")], lambda o: [
            o.get("type", "Opaque"),
            len(o.get("data") or {}),
        ]
    if rt.kind == "Namespace":
        return [col("Status")], lambda o: [(o.get("status") or {}).get("phase", "")]
    return [], lambda o: []


def columns(rt: ResourceType) -> list[dict[str, Any]]:
    if rt.kind == "Event":
        return [
            {"name": n, "type": "string", "format": "", "description": n, "priority": 0}
            for n in ("Last Seen", "Type", "Reason", "Object", "Message")
        ]
    if rt.is_crd:
        cols = [
            {
                "name": c["name"],
                "type": "string" if c.get("type") == "date" else c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
            for c in rt.printer_columns
        ]
        return [_NAME_COL, *(cols or [_AGE_COL])]
    extra, _ = _builtin(rt)
    return [_NAME_COL, *extra, _AGE_COL]


def cells(rt: ResourceType, obj: dict[str, Any]) -> list[Any]:
    meta = obj.get("metadata") or {}
    if rt.kind == "Event":
        inv = obj.get("involvedObject") or {}
        return [
            age(obj.get("lastTimestamp") or meta.get("creationTimestamp")),
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
            obj.get("message", ""),
        ]
    if rt.is_crd:
        if not rt.printer_columns:
            return [meta.get("name"), age(meta.get("creationTimestamp"))]
        out: list[Any] = [meta.get("name")]
        for c in rt.printer_columns:
            found = jsonpath(obj, c["jsonPath"])
            val = found[0] if found else None
            if c.get("type") == "date" and isinstance(val, str):
                val = age(val)
            elif isinstance(val, list | dict):  # client-go jsonpath prints these as JSON
                val = json.dumps(val, separators=(",", ":"))
            out.append(val)
        return out
    _, fn = _builtin(rt)
    return [meta.get("name"), *fn(obj), age(meta.get("creationTimestamp"))]


def row(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "cells": cells(rt, obj),
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {},
        },
    }


def table(
    rt: ResourceType, objs: list[dict[str, Any]], list_meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": columns(rt),
        "rows": [row(rt, o) for o in objs],
    }
