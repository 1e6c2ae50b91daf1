"""The emulated etcd + registry: objects, resourceVersions, history, watches and GC.

Semantics follow the generic apiserver registry (k8s.io/apiserver/pkg/registry/generic) and
the custom-resource strategy (apiextensions-apiserver/pkg/registry/customresource):

* ``resourceVersion`` is one global, monotonically increasing counter (etcd's revision);
  a write whose result equals the stored object is a no-op (no new revision, no event).
* custom resources with a status subresource drop ``.status`` on create, keep the old status
  on main-resource writes and bump ``metadata.generation`` only when something other than
  metadata/status changes; ``/status`` writes change only status.
* updates of custom resources must carry ``metadata.resourceVersion``; a stale one is 409.
* lists are sorted by key (namespace/name, as etcd orders keys) and paginate with opaque
  continue tokens that pin the list's revision; history older than the compaction window
  answers 410 Expired, for watches as an ERROR event.
* deletion honours finalizers, ``propagationPolicy`` and garbage-collects dependents by
  ``ownerReferences``.

Stored objects are never mutated in place (every write stores a new dict), so readers can
hand them out without copying; ``snapshot()`` style accessors return deep copies.
"""

from __future__ import annotations

import base64
import bisect
import json
import queue
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import errors as E
from .errors import ApiError, FieldError, invalid
from .resources import Registry, ResourceType
from .schema import OBJECT_META_FIELDS, apply_defaults, prune, validate_object
from .selectors import FieldRequirement, Requirement, fields_match, labels_match
from .validation import (
    decode_secret,
    normalize_secret,
    validate_object_meta,
    validate_object_meta_update,
)

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery/pkg/util/rand
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
EXPIRED_CONTINUE_MSG = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


def now_ts() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def clone(obj: Any) -> Any:
    """Deep copy of JSON data (faster than copy.deepcopy for plain JSON)."""
    return json.loads(json.dumps(obj))


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields")
    }
    out = dict(obj)
    out["metadata"] = meta
    return out


def _non_meta(obj: dict[str, Any], status_sub: bool) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "metadata" and not (status_sub and k == "status")}


class _DupDict(dict):  # type: ignore[type-arg]
    """A dict decoded from a JSON object that repeated keys (Strict reports them)."""

    dups: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    dups: list[str] = []
    for k, val in pairs:
        if k in d:
            dups.append(k)
        d[k] = val
    if dups:
        dd = _DupDict(d)
        dd.dups = dups
        return dd
    return d


def loads_body(raw: bytes) -> tuple[Any, list[str]]:
    """Decode a request body, returning duplicate-field paths (``duplicate field "a.b"``)."""
    try:
        data = json.loads(raw, object_pairs_hook=_pairs_hook)
    except (ValueError, UnicodeDecodeError) as exc:
        raise E.bad_request(f"error decoding request body: {exc}") from exc
    dups: list[str] = []

    def walk(x: Any, path: str) -> None:
        if isinstance(x, dict):
            if isinstance(x, _DupDict):
                dups.extend(f"{path}.{k}" if path else k for k in x.dups)
            for k, val in x.items():
                walk(val, f"{path}.{k}" if path else k)
        elif isinstance(x, list):
            for i, val in enumerate(x):
                walk(val, f"{path}[{i}]")

    walk(data, "")
    return data, dups


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    rkey: str  # ResourceType.key
    key: str  # "namespace/name"
    obj: dict[str, Any]
    prev: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    """One open watch: filters events for its resource/namespace/selectors into a queue."""

    rt: ResourceType
    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldRequirement]
    queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = field(
        default_factory=queue.SimpleQueue
    )
    closed: bool = False

    def _passes(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(
            self.fields, obj, self.rt.field_getters
        )

    def convert(self, ev: Event) -> tuple[str, dict[str, Any]] | None:
        """cacheWatcher.convertToWatchEvent: selector transitions become ADDED/DELETED."""
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if self._passes(ev.obj) else None
        cur = self._passes(ev.obj)
        old = self._passes(ev.prev) if ev.type == "MODIFIED" else False
        if cur and not old:
            return ("ADDED", ev.obj)
        if cur and old:
            return ("MODIFIED", ev.obj)
        if old and not cur:
            assert ev.prev is not None
            gone = dict(ev.prev)
            gone["metadata"] = dict(ev.prev["metadata"], resourceVersion=str(ev.rv))
            return ("DELETED", gone)
        return None


class PodLogs:
    """Container log lines per (namespace, pod, container) with followers' notification."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.lines: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        self.closed: set[tuple[str, str]] = set()

    def append(self, ns: str, pod: str, container: str, line: str) -> None:
        with self.cond:
            self.lines.setdefault((ns, pod, container), []).append((now_ts(), line))
            self.cond.notify_all()

    def get(self, ns: str, pod: str, container: str) -> list[tuple[str, str]]:
        with self.cond:
            return list(self.lines.get((ns, pod, container), []))

    def drop_pod(self, ns: str, pod: str) -> None:
        with self.cond:
            for k in [k for k in self.lines if k[0] == ns and k[1] == pod]:
                del self.lines[k]
            self.closed.add((ns, pod))
            self.cond.notify_all()

    def reopen(self, ns: str, pod: str) -> None:
        with self.cond:
            self.closed.discard((ns, pod))


@dataclass
class ListResult:
    items: list[dict[str, Any]]
    resource_version: int
    continue_token: str | None
    remaining: int | None


class Store:
    """Thread-safe object store with etcd-like revisions and the registry's write semantics."""

    def __init__(self, registry: Registry, history_limit: int = 20000) -> None:
        self.registry = registry
        self.lock = threading.RLock()
        self.rv_cond = threading.Condition(self.lock)
        self.rv = 1
        self.history_limit = history_limit
        self.compacted_rv = 0
        self._objs: dict[str, dict[str, dict[str, Any]]] = {t.key: {} for t in registry.types}
        self._keys: dict[str, list[str]] = {t.key: [] for t in registry.types}
        self._history: list[Event] = []
        self._hist_rvs: list[int] = []
        self._watchers: dict[str, set[Watcher]] = {t.key: set() for t in registry.types}
        self._listeners: list[Callable[[Event], None]] = []
        self._by_uid: dict[str, tuple[str, str]] = {}
        self._dependents: dict[str, set[tuple[str, str]]] = {}
        self.logs = PodLogs()
        self._rng = random.Random()

    # ------------------------------------------------------------------ plumbing / indexes

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """Register an internal subscriber (controllers, GC); called under the store lock."""
        with self.lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[Event], None]) -> None:
        with self.lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    @staticmethod
    def okey(ns: str | None, name: str) -> str:
        return f"{ns or ''}/{name}"

    def _index_owner_refs(
        self, rkey: str, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        if old is not None:
            for ref in old["metadata"].get("ownerReferences") or []:
                deps = self._dependents.get(ref.get("uid", ""))
                if deps:
                    deps.discard((rkey, key))
        if new is not None:
            for ref in new["metadata"].get("ownerReferences") or []:
                self._dependents.setdefault(ref.get("uid", ""), set()).add((rkey, key))

    def _commit(
        self,
        rt: ResourceType,
        key: str,
        new: dict[str, Any] | None,
        etype: str,
        prev: dict[str, Any] | None,
        final: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write (or delete, new=None) under the lock with a fresh revision and emit events."""
        self.rv += 1
        rv = self.rv
        objs = self._objs[rt.key]
        if new is not None:
            new["metadata"]["resourceVersion"] = str(rv)
            if key not in objs:
                bisect.insort(self._keys[rt.key], key)
            objs[key] = new
            self._by_uid[new["metadata"]["uid"]] = (rt.key, key)
            self._index_owner_refs(rt.key, key, prev, new)
            event_obj = new
        else:
            assert prev is not None
            del objs[key]
            keys = self._keys[rt.key]
            i = bisect.bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                del keys[i]
            self._by_uid.pop(prev["metadata"].get("uid", ""), None)
            self._index_owner_refs(rt.key, key, prev, None)
            src = final if final is not None else prev
            event_obj = dict(src)
            event_obj["metadata"] = dict(src["metadata"], resourceVersion=str(rv))
        ev = Event(rv, etype, rt.key, key, event_obj, prev)
        self._record(ev)
        self.rv_cond.notify_all()
        return event_obj

    def _record(self, ev: Event) -> None:
        self._history.append(ev)
        self._hist_rvs.append(ev.rv)
        if len(self._history) > self.history_limit:
            self._trim(self.history_limit)
        for w in list(self._watchers[ev.rkey]):
            out = w.convert(ev)
            if out is not None:
                w.queue.put(out)
        for fn in list(self._listeners):
            fn(ev)

    def _trim(self, keep: int) -> None:
        drop = len(self._history) - keep
        if drop <= 0:
            return
        self.compacted_rv = max(self.compacted_rv, self._hist_rvs[drop - 1])
        del self._history[:drop]
        del self._hist_rvs[:drop]

    def compact(self, keep_last: int = 0) -> int:
        """Forget all but the last ``keep_last`` events (etcd compaction); returns the
        revision below which watches and consistent lists now answer 410 Expired."""
        with self.lock:
            if keep_last <= 0:
                self._history.clear()
                self._hist_rvs.clear()
                self.compacted_rv = self.rv
            else:
                self._trim(keep_last)
            return self.compacted_rv

    # ------------------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any] | None:
        return self._objs[rt.key].get(self.okey(ns, name))

    def require(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.get(rt, ns, name)
        if obj is None:
            raise E.not_found(rt.res(), name)
        return obj

    def by_uid(self, uid: str) -> tuple[ResourceType, dict[str, Any]] | None:
        loc = self._by_uid.get(uid)
        if loc is None:
            return None
        rt = self.registry.by_key(loc[0])
        return rt, self._objs[loc[0]][loc[1]]

    def snapshot(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy for tests (safe to mutate)."""
        with self.lock:
            obj = self.get(rt, ns, name)
            return clone(obj) if obj is not None else None

    def wait_for_rv(self, rv: int, timeout: float = 3.0) -> None:
        """Block until the store reached ``rv`` (NotOlderThan reads); 504 after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.rv_cond:
            while self.rv < rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise E.too_large_rv(rv, self.rv)
                self.rv_cond.wait(left)

    def _overrides_since(self, rt: ResourceType, rv: int) -> dict[str, dict[str, Any] | None]:
        """State at revision ``rv`` expressed as per-key overrides of the current state."""
        out: dict[str, dict[str, Any] | None] = {}
        start = bisect.bisect_right(self._hist_rvs, rv)
        for ev in reversed(self._history[start:]):
            if ev.rkey != rt.key:
                continue
            out[ev.key] = None if ev.type == "ADDED" else ev.prev
        return out

    def list(
        self,
        rt: ResourceType,
        ns: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        *,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> ListResult:
        """LIST with the apiserver's resourceVersion/limit/continue semantics."""
        start_key = ""
        at_rv: int | None = None  # None = most recent
        if continue_token:
            at_rv, start_key = self._decode_continue(continue_token)
            if at_rv is not None and at_rv <= 0:
                at_rv = None
        elif resource_version not in (None, ""):
            rv = _parse_rv(resource_version)
            match = resource_version_match or ("Exact" if (limit and rv != 0) else "NotOlderThan")
            if match == "Exact":
                if rv == 0:
                    raise E.ApiError(
                        E.status_body(
                            422,
                            "Invalid",
                            'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                            'forbidden for resourceVersion "0"',
                        )
                    )
                at_rv = rv
            elif rv > self.rv:
                self.wait_for_rv(rv)
        elif resource_version_match:
            raise E.ApiError(
                E.status_body(
                    422,
                    "Invalid",
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided",
                )
            )
        with self.lock:
            overrides: dict[str, dict[str, Any] | None] = {}
            if at_rv is not None:
                if at_rv > self.rv:
                    raise E.too_large_rv(at_rv, self.rv)
                if at_rv < self.compacted_rv:
                    if continue_token:
                        raise E.expired(EXPIRED_CONTINUE_MSG, _encode_continue(-1, start_key))
                    raise E.expired(
                        f"The resourceVersion for the provided list is too old. "
                        f"(requested: {at_rv}, oldest: {self.compacted_rv})"
                    )
                overrides = self._overrides_since(rt, at_rv)
            list_rv = at_rv if at_rv is not None else self.rv
            objs = self._objs[rt.key]
            keys = self._keys[rt.key]
            if overrides:
                keys = sorted(set(keys) | set(overrides))
            prefix = f"{ns}/" if ns is not None else ""
            lo = bisect.bisect_left(keys, max(prefix, start_key))
            items: list[dict[str, Any]] = []
            token = None
            remaining = None
            i = lo
            n = len(keys)
            while i < n:
                key = keys[i]
                if prefix and not key.startswith(prefix):
                    break
                i += 1
                obj = overrides[key] if key in overrides else objs.get(key)
                if obj is None:
                    continue
                if labels and not labels_match(labels, obj):
                    continue
                if fields and not fields_match(fields, obj, rt.field_getters):
                    continue
                items.append(obj)
                if limit and len(items) >= limit:
                    end = bisect.bisect_left(keys, prefix + "\uffff") if prefix else n

                    def exists(k: str) -> bool:
                        return (overrides[k] if k in overrides else objs.get(k)) is not None

                    rest = sum(1 for k in keys[i:end] if exists(k)) if overrides else end - i
                    if rest:
                        token = _encode_continue(list_rv, key + "\x00")
                        if not labels and not fields:
                            remaining = rest
                    break
            return ListResult(items, list_rv, token, remaining)

    @staticmethod
    def _decode_continue(token: str) -> tuple[int | None, str]:
        try:
            pad = "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(token + pad))
            if data.get("v") != "meta.k8s.io/v1":
                raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            return int(data["rv"]), str(data["start"])
        except (ValueError, KeyError, TypeError) as exc:
            raise E.bad_request(f"continue key is not valid: {exc}") from exc

    # ----------------------------------------------------------------------------- watches

    def watch(
        self,
        rt: ResourceType,
        ns: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        resource_version: str | None,
        send_initial_events: bool = False,
    ) -> tuple[Watcher, list[tuple[str, dict[str, Any]]], ApiError | None]:
        """Open a watch. Returns the watcher, the events to send first and an error that must
        be sent as an ERROR event (410 Expired) instead of streaming."""
        w = Watcher(rt, ns, labels, fields)
        with self.lock:
            initial: list[tuple[str, dict[str, Any]]] = []
            if resource_version in (None, "", "0") or send_initial_events:
                res = self.list(rt, ns, labels, fields)
                initial = [("ADDED", o) for o in res.items]
                if send_initial_events:
                    initial.append(("BOOKMARK", self.bookmark(rt, {INITIAL_EVENTS_END: "true"})))
            else:
                rv = _parse_rv(resource_version)
                if rv < self.compacted_rv:
                    return w, [], E.expired(f"too old resource version: {rv} ({self.compacted_rv})")
                start = bisect.bisect_right(self._hist_rvs, rv)
                for ev in self._history[start:]:
                    if ev.rkey == rt.key:
                        out = w.convert(ev)
                        if out is not None:
                            initial.append(out)
            self._watchers[rt.key].add(w)
            self.rv_cond.notify_all()  # `emu.wait_for` on open_watches() wakes
            return w, initial, None

    def bookmark(
        self, rt: ResourceType, annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self.rv), "creationTimestamp": None}
        if annotations:
            meta["annotations"] = annotations
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    def bookmark_if_idle(self, w: Watcher) -> dict[str, Any] | None:
        """A BOOKMARK is only safe when every event up to the current revision was queued
        and consumed; pushes happen under the lock, so an empty queue under it proves it."""
        with self.lock:
            if w.queue.empty():
                return self.bookmark(w.rt)
        return None

    def unwatch(self, w: Watcher) -> None:
        with self.lock:
            w.closed = True
            self._watchers[w.rt.key].discard(w)
            w.queue.put(None)
            self.rv_cond.notify_all()

    def open_watches(self) -> int:
        """Watches open right now (a client that closed its watch is gone within 0.2 s)."""
        with self.lock:
            return sum(len(ws) for ws in self._watchers.values())

    def close_all_watches(self) -> None:
        with self.lock:
            for ws in self._watchers.values():
                for w in list(ws):
                    w.closed = True
                    w.queue.put(None)
                ws.clear()

    # ------------------------------------------------------------------------ decode steps

    def decode(
        self,
        rt: ResourceType,
        obj: Any,
        dups: list[str],
        field_validation: str | None,
        *,
        check_type: bool = True,
    ) -> tuple[dict[str, Any], list[str]]:
        """Decoding as the server's serializer does it: type checks (400), structural pruning,
        ``fieldValidation`` (Strict 400 / Warn warnings / Ignore), defaulting."""
        fv = field_validation or "Warn"
        if fv not in FIELD_VALIDATION:
            raise E.bad_request(
                f'fieldValidation: Unsupported value: "{fv}": supported values: "Ignore", '
                '"Warn", "Strict"'
            )
        if not isinstance(obj, dict):
            raise E.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                f"{type(obj).__name__} into Go value of type struct"
            )
        handled = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
        if check_type:
            kind = obj.get("kind")
            api_version = obj.get("apiVersion")
            if not rt.is_crd:
                # typed built-ins default apiVersion/kind from the request's endpoint
                kind = obj.setdefault("kind", rt.kind) or rt.kind
                api_version = obj.setdefault("apiVersion", rt.api_version) or rt.api_version
                obj["kind"], obj["apiVersion"] = kind, api_version
            if not kind:
                raise E.bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
            if api_version != rt.api_version:
                raise E.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected "
                    f"API version ({rt.api_version})"
                )
            if kind != rt.kind:
                raise E.bad_request(
                    f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
                )
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise E.bad_request(
                f"{handled}: json: cannot unmarshal into Go struct field .metadata of type "
                "v1.ObjectMeta"
            )
        for fld in ("labels", "annotations"):
            val = meta.get(fld)
            if val is not None and (
                not isinstance(val, dict) or any(not isinstance(x, str) for x in val.values())
            ):
                raise E.bad_request(
                    f"{handled}: json: cannot unmarshal into Go struct field "
                    f"ObjectMeta.metadata.{fld} of type string"
                )
        if rt.kind == "Secret":
            err = decode_secret(obj)
            if err:
                raise E.bad_request(f"{handled}: {err}")
        if rt.schema is not None:
            pruned = prune(obj, rt.schema)
        else:
            pruned = []
            for k in list(obj):
                if rt.known_fields is not None and k not in rt.known_fields:
                    del obj[k]
                    pruned.append(k)
            for k in list(meta):
                if k not in OBJECT_META_FIELDS:
                    del meta[k]
                    pruned.append(f"metadata.{k}")
        problems = [f'unknown field "{p}"' for p in pruned] + [
            f'duplicate field "{d}"' for d in dups
        ]
        warnings: list[str] = []
        if problems:
            if fv == "Strict":
                raise E.bad_request(f"{handled}: strict decoding error: " + ", ".join(problems))
            if fv == "Warn":
                warnings = problems
        if rt.schema is not None:
            apply_defaults(obj, rt.schema)
        if rt.kind == "Secret":
            normalize_secret(obj)
        return obj, warnings

    def _to_storage_version(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Multi-version CRDs store every object in the storage version (the first one the
        registry knows for the resource); the front end serves it in the requested one."""
        if rt.is_crd:
            obj["apiVersion"] = self.registry.by_key(rt.key).api_version

    def _validate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        errs: list[FieldError] = validate_object_meta(
            meta, namespaced=rt.namespaced, name_check=rt.name_check
        )
        if old is not None:
            errs.extend(validate_object_meta_update(meta, old["metadata"]))
        if rt.schema is not None:
            errs.extend(validate_object(obj, rt.schema))
        if rt.validator is not None:
            errs.extend(rt.validator(obj, old))
        if errs:
            raise E.invalid_object(rt.res(), meta.get("name") or meta.get("generateName", ""), errs)

    def _check_namespace(self, rt: ResourceType, ns: str | None, creating: bool) -> None:
        if not rt.namespaced:
            return
        nsobj = self._objs["/namespaces"].get(f"/{ns}")
        if nsobj is None:
            raise E.namespace_not_found(ns or "")
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            raise E.ApiError(
                E.status_body(
                    403,
                    "Forbidden",
                    f"{rt.plural} is forbidden: unable to create new content in namespace {ns} "
                    "because it is being terminated",
                    {
                        "name": ns,
                        "kind": "namespaces",
                        "causes": [
                            {
                                "reason": "NamespaceTerminating",
                                "message": f"namespace {ns} is being terminated",
                                "field": "metadata.namespace",
                            }
                        ],
                    },
                )
            )

    # ------------------------------------------------------------------------------ writes

    def create(
        self,
        rt: ResourceType,
        ns: str | None,
        body: Any,
        *,
        dups: list[str] | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
        skip_validation: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        obj, warnings = self.decode(rt, body, dups or [], field_validation)
        self._to_storage_version(rt, obj)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise E.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise E.ApiError(
                E.status_body(
                    500,
                    "InternalError",
                    "Internal error occurred: resourceVersion should not be set on objects to "
                    "be created",
                    {
                        "causes": [
                            {
                                "message": "resourceVersion should not be set on objects to be "
                                "created"
                            }
                        ]
                    },
                )
            )
        for k in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
            "managedFields",
        ):
            meta.pop(k, None)
        if rt.status_subresource and rt.is_crd:
            obj.pop("status", None)
        if rt.kind == "Namespace":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        if rt.kind == "Pod":  # podStrategy.PrepareForCreate resets status
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if rt.track_generation:
            meta["generation"] = 1
        gen_name = meta.get("generateName")
        with self.lock:
            self._check_namespace(rt, ns, creating=True)
            if not meta.get("name") and gen_name:
                for _ in range(8):
                    suffix = "".join(self._rng.choice(_GEN_ALPHABET) for _ in range(5))
                    candidate = gen_name[: 63 - 5] + suffix
                    if self.get(rt, ns, candidate) is None:
                        break
                meta["name"] = candidate
            if not skip_validation:
                if rt.mutator is not None:
                    rt.mutator(obj)
                self._validate(rt, obj, None)
                if rt.webhook is not None:
                    denied = rt.webhook(obj, None)
                    if denied is not None:
                        raise denied
            name = meta["name"]
            key = self.okey(ns, name)
            if key in self._objs[rt.key]:
                raise E.already_exists(rt.res(), name)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_ts()
            if rt.kind == "Namespace":
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            if dry_run:
                return obj, warnings
            if rt.kind == "Pod":
                self.logs.reopen(ns or "", name)
            return self._commit(rt, key, obj, "ADDED", None), warnings

    def update(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dups: list[str] | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        """PUT: replace (main resource or /status) with optimistic concurrency."""
        obj, warnings = self.decode(rt, body, dups or [], field_validation)
        self._to_storage_version(rt, obj)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise E.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise E.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        with self.lock:
            return self._update_locked(rt, ns, name, obj, subresource, dry_run), warnings

    def _update_locked(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        obj: dict[str, Any],
        subresource: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        old = self.require(rt, ns, name)
        meta = obj["metadata"]
        meta.setdefault("name", name)
        if rt.namespaced:
            meta.setdefault("namespace", ns)
        given_rv = meta.get("resourceVersion")
        if not given_rv:
            if not rt.allow_unconditional_update:
                raise E.invalid_object(
                    rt.res(),
                    name,
                    [invalid("metadata.resourceVersion", 0, "must be specified for an update")],
                )
        elif given_rv != old["metadata"]["resourceVersion"]:
            raise E.conflict(rt.res(), name)
        given_uid = meta.get("uid")
        if given_uid and given_uid != old["metadata"]["uid"]:
            raise E.conflict(
                rt.res(),
                name,
                f"Precondition failed: UID in precondition: {given_uid}, UID in object meta: "
                f"{old['metadata']['uid']}",
            )
        if rt.mutator is not None and subresource is None:
            rt.mutator(obj)
        new = self._prepare_update(rt, obj, old, subresource)
        self._validate(rt, new, old)
        if rt.webhook is not None and subresource is None:
            denied = rt.webhook(new, old)
            if denied is not None:
                raise denied
        if _without_rv(new) == _without_rv(old):
            return old
        if dry_run:
            return new
        key = self.okey(ns, name)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._delete_now(rt, key, old, new)
        return self._commit(rt, key, new, "MODIFIED", old)

    def _prepare_update(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        om = old["metadata"]
        if subresource == "status":
            # statusStrategy.PrepareForUpdate: everything but status comes from the old object
            new = dict(old)
            new["metadata"] = dict(om)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        new = obj
        meta = new["metadata"]
        for k in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if k in om:
                meta[k] = om[k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = om["resourceVersion"]
        if rt.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt.kind == "Namespace":
            new["spec"] = old.get("spec", {})
            new.setdefault("metadata", {}).setdefault("labels", {})[
                "kubernetes.io/metadata.name"
            ] = om["name"]
        if rt.track_generation and _non_meta(new, rt.status_subresource) != _non_meta(
            old, rt.status_subresource
        ):
            meta["generation"] = int(om.get("generation", 1)) + 1
        return new

    def patch(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        patch_type: str,
        patch_body: Any,
        *,
        subresource: str | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        """PATCH (json-patch, merge-patch, strategic-merge as merge for built-ins)."""
        from .patch import json_patch, merge_patch

        with self.lock:
            old = self.require(rt, ns, name)
            base = clone(old)
            if rt.is_crd:  # served through any version of the CRD (conversion None)
                base["apiVersion"] = rt.api_version
            if patch_type == "json":
                patched = json_patch(base, patch_body)
            else:
                if not isinstance(patch_body, dict):
                    raise E.bad_request(
                        "json: cannot unmarshal array into Go value of type map[string]interface {}"
                    )
                patched = merge_patch(base, patch_body)
            if not isinstance(patched, dict):
                raise E.bad_request("patched object is not a JSON object")
            patched.setdefault("metadata", {})
            obj, warnings = self.decode(rt, patched, [], field_validation, check_type=False)
            if obj.get("apiVersion") != rt.api_version or obj.get("kind") != rt.kind:
                raise E.bad_request("the patch must not change apiVersion or kind")
            self._to_storage_version(rt, obj)
            return self._update_locked(rt, ns, name, obj, subresource, dry_run), warnings

    def delete(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """DELETE with preconditions, finalizers and propagationPolicy; returns (code, body)."""
        opts = options or {}
        with self.lock:
            old = self.require(rt, ns, name)
            om = old["metadata"]
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != om["uid"]:
                raise E.conflict(
                    rt.res(),
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {om['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != om["resourceVersion"]:
                raise E.conflict(
                    rt.res(),
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{om['resourceVersion']}",
                )
            policy = opts.get("propagationPolicy")
            if policy is None and opts.get("orphanDependents") is not None:
                policy = "Orphan" if opts["orphanDependents"] else "Background"
            if policy not in (None, "Background", "Foreground", "Orphan"):
                raise E.invalid_object(
                    E.Resource("meta.k8s.io", "deleteoptions", "DeleteOptions"),
                    "",
                    [
                        E.FieldError(
                            "FieldValueNotSupported",
                            "propagationPolicy",
                            policy,
                            'supported values: "Foreground", "Background", "Orphan"',
                        )
                    ],
                )
            if dry_run:
                return 200, old if rt.returns_deleted_object else self._success(rt, old)
            if om.get("deletionTimestamp"):
                return 200, old
            finalizers = list(om.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if rt.kind == "Namespace":
                # the namespace controller (see gc.py) deletes the content, then the namespace
                new = dict(old)
                new["metadata"] = dict(om, deletionTimestamp=now_ts())
                new["status"] = {"phase": "Terminating"}
                return 200, self._commit(rt, self.okey(ns, name), new, "MODIFIED", old)
            if finalizers:
                new = dict(old)
                new["metadata"] = dict(
                    om,
                    deletionTimestamp=now_ts(),
                    deletionGracePeriodSeconds=0,
                    finalizers=finalizers,
                )
                out = self._commit(rt, self.okey(ns, name), new, "MODIFIED", old)
                code = 202 if opts.get("orphanDependents") is False else 200
                return code, out
            gone = self._delete_now(rt, self.okey(ns, name), old)
            return 200, gone if rt.returns_deleted_object else self._success(rt, gone)

    @staticmethod
    def _success(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"]["uid"]
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _delete_now(
        self, rt: ResourceType, key: str, old: dict[str, Any], final: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Remove now; the DELETED event carries ``final`` (e.g. finalizers just cleared)."""
        out = self._commit(rt, key, None, "DELETED", old, final)
        if rt.kind == "Pod":
            self.logs.drop_pod(old["metadata"].get("namespace", ""), old["metadata"]["name"])
        return out

    # ----------------------------------------------------------------- garbage collection

    def dependents_of(self, uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        with self.lock:
            out = []
            for rkey, key in sorted(self._dependents.get(uid, set())):
                obj = self._objs[rkey].get(key)
                if obj is not None:
                    out.append((self.registry.by_key(rkey), obj))
            return out

    def iter_objects(self, rt: ResourceType, ns: str | None = None) -> Iterator[dict[str, Any]]:
        with self.lock:
            items = list(self._objs[rt.key].values())
        for obj in items:
            if ns is None or obj["metadata"].get("namespace") == ns:
                yield obj

    def bulk_load(
        self,
        rt: ResourceType,
        namespace: str,
        objects: list[dict[str, Any]],
        *,
        validate: bool = False,
    ) -> int:
        """Insert many objects fast (benchmarks). With ``validate=False`` the objects skip
        decoding, pruning, defaulting and schema validation: only metadata is filled in.
        Each object still gets its own revision and ADDED event."""
        if validate:
            for obj in objects:
                self.create(rt, namespace, clone(obj))
            return len(objects)
        with self.lock:
            if rt.namespaced:
                self._check_namespace(rt, namespace, creating=True)
            objs = self._objs[rt.key]
            ts = now_ts()
            new_keys = []
            for body in objects:
                obj = clone(body)
                obj.setdefault("apiVersion", rt.api_version)
                obj.setdefault("kind", rt.kind)
                meta = obj.setdefault("metadata", {})
                if rt.namespaced:
                    meta["namespace"] = namespace
                name = meta["name"]
                key = self.okey(namespace if rt.namespaced else None, name)
                if key in objs:
                    raise E.already_exists(rt.res(), name)
                if rt.status_subresource and rt.is_crd:
                    obj.pop("status", None)
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = ts
                if rt.track_generation:
                    meta["generation"] = 1
                self.rv += 1
                meta["resourceVersion"] = str(self.rv)
                objs[key] = obj
                self._by_uid[meta["uid"]] = (rt.key, key)
                self._index_owner_refs(rt.key, key, None, obj)
                new_keys.append(key)
                self._record(Event(self.rv, "ADDED", rt.key, key, obj, None))
            self._keys[rt.key] = sorted(set(self._keys[rt.key]).union(new_keys))
            self.rv_cond.notify_all()
            return len(objects)


def _parse_rv(value: str) -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError as exc:
        raise E.invalid_object(
            E.Resource("meta.k8s.io", "listoptions", "ListOptions"),
            "",
            [invalid("resourceVersion", value, "must be a valid resource version")],
        ) from exc


def _encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))
