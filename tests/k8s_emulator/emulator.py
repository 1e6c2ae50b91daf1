"""``KubernetesEmulator``: one API server emulator on 127.0.0.1 with its controllers.

Tests drive it with the real ``kubernetes`` client over HTTP and use the attributes here to
shape the cluster (faults, compaction, controller behaviour) and to assert on state without
going through HTTP (``store``, ``get``, ``requests``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from .controllers import SeldonController
from .dataplane import DataPlane
from .faults import Faults, RequestLog
from .gc import GarbageCollector
from .kserve import KServeController, default_isvc
from .openapi import OpenAPI
from .resources import Registry, ResourceType
from .seldon2 import Seldon2Controller
from .server import EmulatorHTTPServer
from .store import Store, clone


class KubernetesEmulator:
    """A faithful-enough kube-apiserver for the project's Seldon and KServe tests.

    Use as a context manager::

        with KubernetesEmulator(namespaces=["default"]) as emu:
            api = kubernetes.client.CustomObjectsApi(emu.api_client())
    """

    def __init__(
        self,
        namespaces: Iterable[str] = ("default",),
        *,
        crd_dir: str | Path | None = None,
        token: str | None = None,
        history_limit: int = 20000,
        controllers: bool = True,
        controller_delay: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self.registry = Registry(str(crd_dir) if crd_dir else None)
        self.store = Store(self.registry, history_limit=history_limit)
        self.faults = Faults()
        self.requests = RequestLog()
        self.token = token or secrets.token_urlsafe(24)
        #: serve HTTPS with the emulator's own CA (what kubectl needs to send the token)
        self.tls = tls
        self._openapi: OpenAPI | None = None
        self.internal_errors: list[str] = []
        self.stopping = threading.Event()
        #: seconds between BOOKMARK events on watches that allow them (real servers: ~60 s)
        self.bookmark_interval = 60.0
        self.gc = GarbageCollector(self.store, self.internal_errors.append)
        self.kserve = KServeController(self, controller_delay)
        self.seldon = SeldonController(self, controller_delay)
        self.seldon2 = Seldon2Controller(self, controller_delay)
        self.registry.by_key("serving.kserve.io/inferenceservices").mutator = lambda obj: (
            default_isvc(obj, self.kserve.default_deployment_mode)
        )
        self._start_controllers = controllers
        self._namespaces = list(namespaces)
        self._host = host
        self._port = port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dataplane: DataPlane | None = None

    def progress_deadline(self, seconds: float) -> KubernetesEmulator:
        """Scale both controllers' Deployment progress deadlines (600 s upstream) to
        ``seconds``; only the wait changes, never what happens when it passes."""
        self.kserve.progress_deadline = self.seldon.progress_deadline = seconds
        return self

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> KubernetesEmulator:
        for ns in self._namespaces:
            self.create_namespace(ns)
        self._server = EmulatorHTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="k8s-emulator-http",
            daemon=True,
        )
        self._thread.start()
        self.gc.start()
        if self._start_controllers:
            self.kserve.start()
            self.seldon.start()
            self.seldon2.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.kserve.stop()
        self.seldon.stop()
        self.seldon2.stop()
        if self._dataplane is not None:
            self._dataplane.close()
        self.gc.stop()
        self.store.close_all_watches()
        with self.store.logs.cond:
            self.store.logs.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubernetesEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- access

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._host}:{self.port}"

    @property
    def dataplane(self) -> DataPlane:
        """Ingress, scoring servers and request metrics (created on first use; its parts
        start only when a route is served or a model registered)."""
        if self._dataplane is None:
            self._dataplane = DataPlane()
        return self._dataplane

    @property
    def openapi(self) -> OpenAPI:
        """The OpenAPI documents, built on first use (the KServe schema is large)."""
        if self._openapi is None:
            self._openapi = OpenAPI(self.registry)
        return self._openapi

    def registry_versions(self) -> set[tuple[str, str]]:
        return {(t.group, t.version) for t in self.registry.types}

    def kubeconfig_dict(self, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig with one context, ``emulator``, using a bearer token."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": self._cluster()}],
            "users": [{"name": "emulator", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
            "preferences": {},
        }

    def _cluster(self) -> dict[str, Any]:
        if not self.tls:
            return {"server": self.url}
        import base64

        from .tls import certs

        return {
            "server": self.url,
            "certificate-authority-data": base64.b64encode(certs().ca_pem).decode(),
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        p = Path(path)
        p.write_text(yaml.safe_dump(self.kubeconfig_dict(namespace)))
        return p

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` configured for this emulator (not global)."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config_from_dict(self.kubeconfig_dict(), client_configuration=cfg)
        return client.ApiClient(cfg)

    def rt(self, kind_or_plural: str) -> ResourceType:
        """Resource type by kind (``InferenceService``) or plural (``inferenceservices``)."""
        for t in self.registry.types:
            if kind_or_plural in (t.kind, t.plural):
                return t
        raise KeyError(kind_or_plural)

    def get(self, kind: str, name: str, namespace: str | None = "default") -> dict[str, Any] | None:
        """Deep copy of a stored object, bypassing HTTP (for assertions)."""
        t = self.rt(kind)
        return self.store.snapshot(t, namespace if t.namespaced else None, name)

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        t = self.rt(kind)
        return [clone(o) for o in self.store.iter_objects(t, namespace)]

    def create_namespace(self, name: str) -> dict[str, Any]:
        obj, _ = self.store.create(
            self.rt("namespaces"),
            None,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        return obj

    def bulk_load(
        self,
        kind: str,
        objects: list[dict[str, Any]],
        namespace: str = "default",
        *,
        validate: bool = False,
    ) -> int:
        """Insert many objects directly (see ``Store.bulk_load``: no validation by default)."""
        return self.store.bulk_load(self.rt(kind), namespace, objects, validate=validate)

    @property
    def history_limit(self) -> int:
        """How many events the store keeps for watches and consistent lists (the window)."""
        return self.store.history_limit

    @history_limit.setter
    def history_limit(self, value: int) -> None:
        with self.store.lock:
            self.store.history_limit = value
            self.store._trim(value)

    def compact(self, keep_last: int = 0) -> int:
        """Compact history; watches/consistent lists from older revisions get 410 Expired."""
        return self.store.compact(keep_last)

    def append_pod_log(
        self, pod: str, line: str, *, namespace: str = "default", container: str | None = None
    ) -> None:
        obj = self.store.require(self.rt("pods"), namespace, pod)
        c = container or obj["spec"]["containers"][0]["name"]
        self.store.logs.append(namespace, pod, c, line)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds, re-checking on every store write (no polling)."""
        deadline = time.monotonic() + timeout
        with self.store.rv_cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.store.rv_cond.wait(min(left, 0.25))
        return True
