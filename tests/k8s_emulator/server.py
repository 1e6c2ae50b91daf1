"""HTTP front end: routes Kubernetes REST paths to the store, streams watches and logs.

Uses ``http.server`` with one thread per connection (HTTP/1.1 keep-alive, as urllib3 in the
``kubernetes`` client pools connections); watch and log-follow responses are chunked streams
that end with the terminating chunk, or are cut without it when a fault says so.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import select
import socket
import ssl
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors as E
from . import tables
from .errors import ApiError
from .faults import RequestRecord
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import loads_body

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator

_TRUE = ("true", "1", "True")
_JSON = "application/json"
K8S_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulator"}


@dataclass
class Route:
    """A parsed API path."""

    rt: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    special: str | None = None  # discovery and health endpoints
    special_arg: Any = None


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # like an apiserver's listen backlog (socketserver's is 5)
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], emu: KubernetesEmulator) -> None:
        self.emu = emu
        self.active: set[socket.socket] = set()
        self.active_lock = threading.Lock()
        super().__init__(addr, ApiHandler)
        if emu.tls:
            from .tls import certs

            # the handshake runs in the connection's thread, not in the accept loop
            self.socket = (
                certs()
                .server_context()
                .wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its watch or keep-alive connection is normal, not an error."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionResetError | BrokenPipeError | ssl.SSLError):
            return  # a client that closed its (TLS) connection mid-stream
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.active_lock:
            self.active.add(request)
        try:
            if hasattr(request, "do_handshake"):
                try:
                    request.settimeout(10)
                    request.do_handshake()
                    request.settimeout(None)
                except (OSError, ValueError):
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            with self.active_lock:
                self.active.discard(request)

    def close_connections(self) -> None:
        with self.active_lock:
            socks = list(self.active)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Abort(Exception):
    """Stop a stream and drop the connection without the final chunk."""


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-emulator"
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging; the request log records everything."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    # ------------------------------------------------------------------------ framing

    def _send_bytes(
        self,
        code: int,
        payload: bytes,
        ctype: str = _JSON,
        headers: dict[str, str] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self._log_request(code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, val in (headers or {}).items():
            self.send_header(k, val)
        for w in warnings or []:
            self.send_header("Warning", "299 - " + json.dumps(w))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_json(
        self,
        code: int,
        obj: Any,
        headers: dict[str, str] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self._send_bytes(
            code, json.dumps(obj, separators=(",", ":")).encode(), _JSON, headers, warnings
        )

    def _start_stream(self, ctype: str) -> None:
        self._log_request(200)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _client_closed(self) -> bool:
        """True once the client closed its end (EOF readable without consuming data)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            # Peek at the TCP stream itself: an SSLSocket refuses recv flags, and the EOF
            # that tells a closed client is below TLS anyway.
            return bool(readable) and socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------------ main entry

    def _handle(self) -> None:
        emu = self.server.emu
        started = time.monotonic()
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._status = 500
        self._route: Route | None = None
        self._logged = False
        verb = self.command.lower()
        self._q: dict[str, Any] = {"path": path, "query": query, "verb": verb, "started": started}
        try:
            if emu.faults.latency > 0:
                time.sleep(emu.faults.latency)
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() != emu.token:
                raise E.unauthorized()
            route = self._route = self._parse(path)
            verb = self._q["verb"] = self._verb(route, query)
            streaming = verb == "watch" or (
                route.subresource == "log" and query.get("follow") in _TRUE
            )
            code = emu.faults.pick(self.command, path, streaming)
            if code is not None:
                raise E.injected(code)
            self._dispatch(route, query, body)
        except ApiError as exc:
            self._status = exc.code
            self._safe_send(exc.code, exc.status, exc.headers)
        except (BrokenPipeError, ConnectionResetError, _Abort, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # an emulator bug: answer 500 and keep it for the tests
            emu.internal_errors.append(
                f"{self.command} {self.path}: {exc!r}\n{traceback.format_exc()}"
            )
            self._status = 500
            self._safe_send(
                500,
                E.status_body(500, "InternalError", f"Internal error occurred: {exc!r}"),
                {},
            )
        finally:
            self._log_request(self._status)

    def _log_request(self, status: int) -> None:
        """Record the request once, before its response is written, so a client that got the
        answer always finds it in ``emu.requests`` (duration = time to the response start)."""
        if self._logged:
            return
        self._logged = True
        r = self._route
        q = self._q
        self.server.emu.requests.add(
            RequestRecord(
                method=self.command,
                path=q["path"],
                query=q["query"],
                status=status,
                verb=q["verb"],
                resource=r.rt.plural if r and r.rt else None,
                namespace=r.namespace if r else None,
                name=r.name if r else None,
                subresource=r.subresource if r else None,
                duration=time.monotonic() - q["started"],
            )
        )

    def _safe_send(self, code: int, obj: Any, headers: dict[str, str]) -> None:
        try:
            self._send_json(code, obj, headers)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _verb(self, route: Route, query: dict[str, str]) -> str:
        """The authorization verb of the request (what audit logs and benchmarks count)."""
        m = self.command
        if route.special:
            return "discovery"
        if route.name is None:
            if m == "GET":
                return "watch" if query.get("watch") in _TRUE else "list"
            return {"POST": "create", "DELETE": "deletecollection"}.get(m, m.lower())
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            m, m.lower()
        )

    # --------------------------------------------------------------------------- routing

    def _parse(self, path: str) -> Route:
        emu = self.server.emu
        segs = [s for s in path.split("/") if s]
        if not segs:
            return Route(special="root")
        if segs[0] in ("healthz", "livez", "readyz") and len(segs) == 1:
            return Route(special="health")
        if segs == ["version"]:
            return Route(special="version")
        if segs[0] == "openapi" and len(segs) >= 2 and segs[1] in ("v2", "v3"):
            return Route(special="openapi", special_arg="/".join(segs[1:]))
        if segs == ["api"]:
            return Route(special="api")
        if segs == ["apis"]:
            return Route(special="apis")
        if segs[0] == "api" and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis" and len(segs) >= 2:
            if len(segs) == 2:
                return Route(special="group", special_arg=segs[1])
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise E.not_found_path()
        if not rest:
            if (group, version) not in emu.registry_versions():
                raise E.not_found_path()
            return Route(special="resources", special_arg=(group, version))
        reg = emu.registry
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            ns = rest[1]
            rt = reg.lookup(group, version, rest[2])
            if rt is None or not rt.namespaced:
                raise E.not_found_path()
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
            if len(rest) > 5:
                raise E.not_found_path()
            return self._check_sub(Route(rt, ns, name, sub))
        rt = reg.lookup(group, version, rest[0])
        if rt is None:
            raise E.not_found_path()
        if rt.namespaced:
            if len(rest) > 1:
                raise E.not_found_path()
            return Route(rt, None, None, None)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise E.not_found_path()
        return self._check_sub(Route(rt, None, name, sub))

    @staticmethod
    def _check_sub(route: Route) -> Route:
        sub = route.subresource
        assert route.rt is not None
        if sub is None:
            return route
        if sub == "status" and route.rt.status_subresource:
            return route
        if sub == "log" and route.rt.kind == "Pod":
            return route
        if sub == "scale" and route.rt.scale is not None:
            return route
        raise E.not_found_path()

    # -------------------------------------------------------------------------- dispatch

    def _dispatch(self, route: Route, query: dict[str, str], body: bytes) -> None:
        if route.special:
            self._discovery(route)
            return
        rt = route.rt
        assert rt is not None
        emu = self.server.emu
        store = emu.store
        m = self.command
        dry_run = query.get("dryRun") == "All"
        fv = query.get("fieldValidation")
        if route.name is None:
            if m == "GET":
                if query.get("watch") in _TRUE:
                    self._watch(route, query)
                else:
                    self._list(route, query)
                return
            if m == "POST":
                data, dups = loads_body(body)
                obj, warnings = store.create(
                    rt, route.namespace, data, dups=dups, field_validation=fv, dry_run=dry_run
                )
                self._ok(201, obj, warnings)
                return
            raise E.method_not_allowed()
        if route.subresource == "log":
            if m != "GET":
                raise E.method_not_allowed()
            self._logs(route, query)
            return
        if route.subresource == "scale":
            self._scale(route, query, body)
            return
        if m == "GET":
            rv = query.get("resourceVersion")
            if rv not in (None, "", "0"):
                from .store import _parse_rv

                store.wait_for_rv(_parse_rv(rv))
            obj = store.require(rt, route.namespace, route.name)
            if tables.wants_table(self.headers.get("Accept", "")):
                self._ok(200, tables.table(rt, [self._as_version(rt, obj)]))
                return
            self._ok(200, obj)
        elif m == "PUT":
            data, dups = loads_body(body)
            obj, warnings = store.update(
                rt,
                route.namespace,
                route.name,
                data,
                subresource=route.subresource,
                dups=dups,
                field_validation=fv,
                dry_run=dry_run,
            )
            self._ok(200, obj, warnings)
        elif m == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            accepted = ["application/json-patch+json", "application/merge-patch+json"]
            if not rt.is_crd:
                accepted.append("application/strategic-merge-patch+json")
            accepted.append("application/apply-patch+yaml")
            if ctype == "application/json-patch+json":
                ptype = "json"
            elif ctype == "application/merge-patch+json" or (
                ctype == "application/strategic-merge-patch+json" and not rt.is_crd
            ):
                ptype = "merge"
            else:
                # server-side apply is not emulated (field ownership/conflicts would be fake)
                raise E.unsupported_media_type(accepted)
            data, _ = loads_body(body)
            obj, warnings = store.patch(
                rt,
                route.namespace,
                route.name,
                ptype,
                data,
                subresource=route.subresource,
                field_validation=fv,
                dry_run=dry_run,
            )
            self._ok(200, obj, warnings)
        elif m == "DELETE":
            if route.subresource:
                raise E.method_not_allowed()
            opts: dict[str, Any] = {}
            if body.strip():
                data, _ = loads_body(body)
                if isinstance(data, dict):
                    opts.update(data)
            if "propagationPolicy" in query:
                opts["propagationPolicy"] = query["propagationPolicy"]
            if "orphanDependents" in query:
                opts["orphanDependents"] = query["orphanDependents"] in _TRUE
            if (opts.get("dryRun") or []) == ["All"]:
                dry_run = True
            code, out = store.delete(rt, route.namespace, route.name, opts, dry_run=dry_run)
            self._ok(code, out)
        else:
            raise E.method_not_allowed()

    def _ok(self, code: int, obj: Any, warnings: list[str] | None = None) -> None:
        self._status = code
        rt = self._route.rt if self._route is not None else None
        if rt is not None and isinstance(obj, dict) and obj.get("kind") == rt.kind:
            obj = self._as_version(rt, obj)
        self._send_json(code, obj, warnings=warnings)

    @staticmethod
    def _as_version(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Served through another version of a multi-version CRD (conversion ``None``):
        only ``apiVersion`` changes."""
        if rt.is_crd and obj.get("apiVersion") not in (None, rt.api_version):
            return dict(obj, apiVersion=rt.api_version)
        return obj

    # ------------------------------------------------------------------------------ scale

    def _scale(self, route: Route, query: dict[str, str], body: bytes) -> None:
        """``/scale`` (autoscaling/v1 Scale) over ``subresources.scale`` paths."""
        rt = route.rt
        assert rt is not None and rt.scale is not None and route.name is not None
        store = self.server.emu.store
        spec_path = rt.scale["specReplicasPath"].lstrip(".").split(".")
        status_path = (rt.scale.get("statusReplicasPath") or "").lstrip(".").split(".")

        def dig(obj: Any, path: list[str]) -> Any:
            for k in path:
                obj = obj.get(k) if isinstance(obj, dict) else None
            return obj

        def as_scale(obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj["metadata"]
            status: dict[str, Any] = {"replicas": int(dig(obj, status_path) or 0)}
            sel_path = rt.scale.get("labelSelectorPath") if rt.scale else None
            sel = dig(obj, sel_path.lstrip(".").split(".")) if sel_path else None
            if isinstance(sel, dict):
                status["selector"] = ",".join(
                    f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())
                )
            elif isinstance(sel, str):
                status["selector"] = sel
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in meta
                },
                "spec": {"replicas": int(dig(obj, spec_path) or 0)},
                "status": status,
            }

        m = self.command
        obj = store.require(rt, route.namespace, route.name)
        if m == "GET":
            self._send_scale(as_scale(obj))
            return
        if m not in ("PUT", "PATCH"):
            raise E.method_not_allowed()
        data, _ = loads_body(body)
        current = as_scale(obj)
        if m == "PATCH":
            from .patch import json_patch, merge_patch

            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype == "application/json-patch+json":
                data = json_patch(current, data)
            elif ctype in (
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ):
                data = merge_patch(current, data)
            else:
                raise E.unsupported_media_type(
                    ["application/json-patch+json", "application/merge-patch+json"]
                )
        replicas = (data.get("spec") or {}).get("replicas") if isinstance(data, dict) else None
        if not isinstance(replicas, int) or replicas < 0:
            raise E.ApiError(
                E.status_body(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: '
                    f"{json.dumps(replicas)}: must be greater than or equal to 0",
                )
            )
        rv = ((data.get("metadata") or {}).get("resourceVersion")) if m == "PUT" else None
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise E.conflict(rt.res(), route.name)
        new = json.loads(json.dumps(obj))
        cur = new
        for k in spec_path[:-1]:
            cur = cur.setdefault(k, {})
        cur[spec_path[-1]] = replicas
        out, _ = store.update(
            rt, route.namespace, route.name, new, dry_run=query.get("dryRun") == "All"
        )
        self._send_scale(as_scale(out))

    def _send_scale(self, scale: dict[str, Any]) -> None:
        self._status = 200
        self._send_json(200, scale)

    # ------------------------------------------------------------------------ list/watch

    def _selectors(self, rt: ResourceType, query: dict[str, str]) -> tuple[Any, Any]:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rt.field_getters)
        return labels, fields

    def _list(self, route: Route, query: dict[str, str]) -> None:
        rt = route.rt
        assert rt is not None
        labels, fields = self._selectors(rt, query)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise E.bad_request(f"limit: invalid value {query.get('limit')!r}") from exc
        res = self.server.emu.store.list(
            rt,
            route.namespace,
            labels,
            fields,
            limit=max(limit, 0),
            continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion"),
            resource_version_match=query.get("resourceVersionMatch") or None,
        )
        meta: dict[str, Any] = {"resourceVersion": str(res.resource_version)}
        if res.continue_token:
            meta["continue"] = res.continue_token
        if res.remaining is not None:
            meta["remainingItemCount"] = res.remaining
        items = [self._as_version(rt, o) for o in res.items]
        if tables.wants_table(self.headers.get("Accept", "")):
            self._ok(200, tables.table(rt, items, meta))
            return
        if not rt.is_crd:  # typed lists carry no kind/apiVersion on their items
            items = [
                {k: val for k, val in o.items() if k not in ("kind", "apiVersion")} for o in items
            ]
        self._ok(
            200,
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items},
        )

    def _watch(self, route: Route, query: dict[str, str]) -> None:
        emu = self.server.emu
        store = emu.store
        rt = route.rt
        assert rt is not None
        labels, fields = self._selectors(rt, query)
        if "timeoutSeconds" in query:
            try:
                timeout = float(query["timeoutSeconds"])
            except ValueError as exc:
                raise E.bad_request("timeoutSeconds must be an integer") from exc
        else:
            timeout = 1800.0 * (1 + random.random())  # minRequestTimeout * [1, 2)
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        as_table = tables.wants_table(self.headers.get("Accept", ""))
        initial_events = query.get("sendInitialEvents") in _TRUE
        if initial_events and query.get("resourceVersionMatch") != "NotOlderThan":
            raise E.ApiError(
                E.status_body(
                    422,
                    "Invalid",
                    'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            )
        watcher, initial, err = store.watch(
            rt, route.namespace, labels, fields, query.get("resourceVersion"), initial_events
        )
        faults = emu.faults
        drop_events = faults.drop_watch_after_events
        drop_secs = faults.drop_watch_after_seconds
        self._status = 200
        start = time.monotonic()
        deadline = start + timeout
        next_bookmark = start + emu.bookmark_interval
        sent = 0
        try:
            self._start_stream(_JSON)
            if err is not None:
                self._chunk(json.dumps({"type": "ERROR", "object": err.status}).encode() + b"\n")
                self._end_stream()
                return
            pending = collections.deque(initial)
            while True:
                if emu.stopping.is_set():
                    raise _Abort()
                now = time.monotonic()
                if drop_secs is not None and now - start >= drop_secs:
                    raise _Abort()
                if pending:
                    etype, obj = pending.popleft()
                else:
                    if now >= deadline:
                        if bookmarks:
                            bm = store.bookmark_if_idle(watcher)
                            if bm is not None:
                                self._chunk(
                                    json.dumps({"type": "BOOKMARK", "object": bm}).encode() + b"\n"
                                )
                        self._end_stream()
                        return
                    if bookmarks and now >= next_bookmark:
                        next_bookmark = now + emu.bookmark_interval
                        bm = store.bookmark_if_idle(watcher)
                        if bm is not None:
                            self._chunk(
                                json.dumps({"type": "BOOKMARK", "object": bm}).encode() + b"\n"
                            )
                            continue
                    wait = min(0.2, max(0.0, deadline - now))
                    if drop_secs is not None:
                        wait = min(wait, max(0.0, start + drop_secs - now))
                    if bookmarks:
                        wait = min(wait, max(0.0, next_bookmark - now))
                    if self._client_closed():  # the apiserver sees a cancelled request
                        raise _Abort()
                    try:
                        item = watcher.queue.get(timeout=max(wait, 0.001))
                    except Exception:  # queue.Empty
                        continue
                    if item is None:
                        raise _Abort()
                    etype, obj = item
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    obj = self._as_version(rt, obj)
                    if as_table:
                        obj = tables.table(rt, [obj])
                self._chunk(
                    json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode()
                    + b"\n"
                )
                sent += 1
                if drop_events is not None and sent >= drop_events:
                    raise _Abort()
        except _Abort:
            self._drop()
        finally:
            store.unwatch(watcher)

    # ------------------------------------------------------------------------------- logs

    def _logs(self, route: Route, query: dict[str, str]) -> None:
        emu = self.server.emu
        store = emu.store
        rt = route.rt
        assert rt is not None and route.name is not None
        ns = route.namespace or ""
        pod = store.require(rt, route.namespace, route.name)
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init_names = [c["name"] for c in spec.get("initContainers") or []]
        container = query.get("container")
        if not container:
            if len(names) == 1:
                container = names[0]
            else:
                msg = (
                    f"a container name must be specified for pod {route.name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
                if init_names:
                    msg += f" or one of the init containers: [{' '.join(init_names)}]"
                raise E.bad_request(msg)
        if container not in names and container not in init_names:
            raise E.bad_request(f"container {container} is not valid for pod {route.name}")
        statuses = (pod.get("status") or {}).get("containerStatuses", []) + (
            pod.get("status") or {}
        ).get("initContainerStatuses", [])
        for cs in statuses:
            if (
                cs.get("name") == container
                and "waiting" in (cs.get("state") or {})
                and not emu.store.logs.get(ns, route.name, container)
            ):
                reason = cs["state"]["waiting"].get("reason", "ContainerCreating")
                raise E.bad_request(
                    f'container "{container}" in pod "{route.name}" is waiting to start: {reason}'
                )
        stamps = query.get("timestamps") in _TRUE
        tail = query.get("tailLines")
        limit_bytes = int(query["limitBytes"]) if query.get("limitBytes") else None

        def render(lines: list[tuple[str, str]]) -> bytes:
            return "".join((f"{ts} {ln}\n" if stamps else f"{ln}\n") for ts, ln in lines).encode()

        lines = store.logs.get(ns, route.name, container)
        if tail is not None:
            n = int(tail)
            lines = lines[-n:] if n > 0 else []
        if query.get("follow") not in _TRUE:
            data = render(lines)
            if limit_bytes is not None:
                data = data[:limit_bytes]
            self._status = 200
            self._send_bytes(200, data, "text/plain")
            return
        self._status = 200
        self._start_stream("text/plain")
        sent_total = len(store.logs.get(ns, route.name, container))
        first = render(lines)
        if first:
            self._chunk(first)
        logs = store.logs
        while True:
            with logs.cond:
                while True:
                    if emu.stopping.is_set():
                        raise _Abort()
                    current = logs.lines.get((ns, route.name, container), [])
                    if len(current) > sent_total:
                        new = current[sent_total:]
                        sent_total = len(current)
                        break
                    if (ns, route.name) in logs.closed:
                        new = None
                        break
                    logs.cond.wait(0.2)
            if new is None:
                self._end_stream()
                return
            self._chunk(render(new))

    # -------------------------------------------------------------------------- discovery

    def _openapi(self, arg: str) -> None:
        doc = _openapi_doc(self.server.emu, arg)
        if doc is None:
            raise E.not_found_path()
        self._status = 200
        self._send_bytes(200, doc, _JSON)

    def _discovery(self, route: Route) -> None:
        emu = self.server.emu
        kind = route.special
        if kind == "health":
            self._status = 200
            self._send_bytes(200, b"ok", "text/plain")
            return
        if kind == "version":
            out = dict(
                K8S_VERSION,
                gitCommit="0" * 40,
                gitTreeState="clean",
                buildDate="2025-01-01T00:00:00Z",
                goVersion="go1.24.0",
                compiler="gc",
                platform="linux/amd64",
            )
            self._ok(200, out)
            return
        if kind == "openapi":
            self._openapi(str(route.special_arg))
            return
        if kind == "root":
            self._ok(200, {"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz"]})
            return
        if kind == "api":
            host = f"127.0.0.1:{emu.port}"
            self._ok(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": host}
                    ],
                },
            )
            return
        groups = emu.registry.groups()
        if kind == "apis":
            self._ok(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [_group(g, vs) for g, vs in sorted(groups.items())],
                },
            )
            return
        if kind == "group":
            g = route.special_arg
            if g not in groups:
                raise E.not_found_path()
            self._ok(200, dict(_group(g, groups[g]), kind="APIGroup", apiVersion="v1"))
            return
        group, version = route.special_arg
        resources = []
        for t in emu.registry.types:
            if t.group != group or t.version != version:
                continue
            resources.append(
                {
                    "name": t.plural,
                    "singularName": t.singular,
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": list(t.verbs),
                    "shortNames": t.short_names,
                    **({"categories": t.categories} if t.categories else {}),
                }
            )
            if t.status_subresource:
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if t.scale is not None:
                resources.append(
                    {
                        "name": f"{t.plural}/scale",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if t.kind == "Pod":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        gv = f"{group}/{version}" if group else version
        self._ok(
            200,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": resources,
            },
        )


def _openapi_doc(emu: KubernetesEmulator, arg: str) -> bytes | None:
    spec = emu.openapi
    if arg == "v2":
        return spec.v2
    if arg == "v3":
        return spec.root
    return spec.docs.get(arg[len("v3/") :]) if arg.startswith("v3/") else None


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}
