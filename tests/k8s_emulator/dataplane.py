"""The emulator's data plane: real MLflow scoring servers behind a loopback ingress.

A cluster answers predictions through an ingress (Istio/Knative for KServe and Seldon 1, the
`seldon-mesh` Envoy for Seldon 2) that splits and mirrors traffic the way the platform's
objects ask, and each serving pod exports request metrics under the platform's own names.
The controllers publish routes here; tests send requests to `url` and let a real
Prometheus scrape `metrics_url`.

Routing keys, as the flavors address a cluster (core/modeldeploy/flavors/*):
- `kserve`: the `Host` header (status URL host, e.g. `iris.default.example.com`);
- `seldon`: the path prefix `/seldon/<namespace>/<name>` (route key `<namespace>/<name>`);
- `seldon2`: the `Seldon-Model` header on the mesh (route key = that header's value).

Nothing starts until it is needed: `publish` only stores a table; the ingress starts on the
first use of `url`/`metrics_url`, a scoring server when its model is registered.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .dataplane_metrics import PLATFORMS, MetricStore
from .scoring import ScoringServers

if TYPE_CHECKING:
    from .dataplane_ingress import IngressThread


@dataclass(frozen=True)
class Backend:
    """One variant as the platform runs it (a revision, a predictor, a Seldon 2 model)."""

    key: str  # revision name / predictor name / Seldon 2 model name
    model_uri: str  # storageUri / modelUri as written in the object
    weight: int = 0  # share of client traffic (relative; the platforms' weights sum to 100)
    mirror: bool = False  # receives a copy of each client request; its answer is discarded
    mirror_percent: int = 100  # share of client requests copied when `mirror`
    #: labels the platform puts on this variant's request metrics (see dataplane_metrics)
    metric_labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"backend {self.key}: weight {self.weight} must not be negative")
        if self.mirror and self.weight:
            raise ValueError(f"backend {self.key}: a mirror takes no client traffic (weight 0)")
        if not 0 <= self.mirror_percent <= 100:
            raise ValueError(f"backend {self.key}: mirror_percent must be within 0..100")
        object.__setattr__(self, "metric_labels", MappingProxyType(dict(self.metric_labels)))


@dataclass(frozen=True)
class Route:
    """One published route: read whole by each request, replaced whole by `publish`."""

    platform: str
    key: str
    backends: tuple[Backend, ...]
    model_name: str | None = None  # when set, the path's model name must match (else 404)

    @property
    def served(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.backends if not b.mirror and b.weight > 0)

    @property
    def mirrors(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.backends if b.mirror)

    def pick(self, rng: random.Random) -> Backend | None:
        """A backend drawn by weight for one client request (None: nothing serves)."""
        served = self.served
        if not served:
            return None
        point = rng.random() * sum(b.weight for b in served)
        for backend in served:
            point -= backend.weight
            if point < 0:
                return backend
        return served[-1]


class DataPlane:
    """Routes, scoring servers and metrics of one emulated cluster (``emu.dataplane``)."""

    def __init__(self, seed: int | None = None) -> None:
        #: draws of weighted routing and mirroring; seed it for a reproducible split
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._routes: Mapping[tuple[str, str], Route] = MappingProxyType({})
        self.servers = ScoringServers()
        self.metrics = MetricStore()
        self._ingress: IngressThread | None = None

    # ------------------------------------------------------------------ models (the tests)

    def register_model(self, model_uri: str, local_model_dir: str) -> None:
        """Serve `model_uri` (as written in the objects) from a local MLflow model folder.
        Starts its scoring server in the background; `wait_ready` waits for it."""
        self.servers.register(model_uri, local_model_dir)

    def ready(self, model_uri: str) -> bool:
        return self.servers.ready(model_uri)

    def wait_ready(self, model_uri: str, timeout: float = 120.0) -> None:
        """Block until the model answers, or raise with the scoring server's own output."""
        self.servers.wait_ready(model_uri, timeout)

    # ------------------------------------------------------------ routes (the controllers)

    def publish(
        self,
        platform: str,
        route_key: str,
        backends: list[Backend],
        *,
        model_name: str | None = None,
    ) -> None:
        """Replace the route `(platform, route_key)` atomically; in-flight requests finish
        on the table they started with."""
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")
        if platform == "kserve" and any(b.mirror for b in backends):
            raise ValueError("KServe has no mirroring: a kserve route takes no mirror backend")
        keys = [b.key for b in backends]
        if len(set(keys)) != len(keys):
            raise ValueError(f"route {platform}:{route_key}: duplicate backend keys {keys}")
        route = Route(platform, route_key, tuple(backends), model_name)
        with self._lock:
            self._routes = MappingProxyType({**self._routes, (platform, route_key): route})

    def withdraw(self, platform: str, route_key: str) -> None:
        """Remove a route (the object was deleted or stopped); later requests get 404."""
        with self._lock:
            routes = dict(self._routes)
            routes.pop((platform, route_key), None)
            self._routes = MappingProxyType(routes)

    def route(self, platform: str, route_key: str) -> Route | None:
        return self._routes.get((platform, route_key))

    @property
    def routes(self) -> Mapping[tuple[str, str], Route]:
        return self._routes

    # ------------------------------------------------------------------------- endpoints

    @property
    def url(self) -> str:
        """Ingress base `http://127.0.0.1:PORT` (use as the flavors' `ingress_base_url`)."""
        return self._started().url

    @property
    def metrics_url(self) -> str:
        """Prometheus text exposition of every backend's request metrics."""
        return self._started().metrics_url

    def _started(self) -> IngressThread:
        with self._lock:
            if self._ingress is None:
                from .dataplane_ingress import IngressThread

                self._ingress = IngressThread(self)
            return self._ingress

    def close(self) -> None:
        with self._lock:
            ingress, self._ingress = self._ingress, None
        if ingress is not None:
            ingress.close()
        self.servers.close()
