"""Controller simulator for Seldon Core 2 (mlops.seldon.io/v1alpha1): Servers, Models, Experiments.

Seldon Core 2 has no per-model Deployment: a scheduler places each `Model` on a shared
`Server` whose capabilities cover the model's requirements, and the operator copies the
scheduler's model and experiment events into the resources' conditions. This simulator does
both in one loop, as the upstream code does (every behaviour is a row of FIDELITY.md):

* Server: `StatefulSetReady`/`Ready` once created; capabilities from its ServerConfig
  (`mlserver`, `triton` defaults), replaced by `spec.capabilities`, plus `extraCapabilities`.
* Model: `requirements` + `modelType` must be a subset of a Server's capabilities, the Server
  must have as many replicas as the model asks, `spec.server` pins one Server; otherwise
  `ModelReady=False` with message `ScheduleFailed`. A scheduled model goes
  `ModelProgressing` -> `ModelAvailable` (or `ModelFailed` when its storage cannot be read).
  Status is written only for the model's current generation; no `observedGeneration`.
* Experiment: refused without candidates, or when its default model is already the default of
  another experiment; `CandidatesReady`/`MirrorReady` follow the latest version of each
  model, `ExperimentReady` when the experiment is active.
* Finalizers `seldon.model.finalizer` / `seldon.experiment.finalizer` hold deletion until the
  scheduler has unloaded the model / stopped the experiment.

`routes()` is the routing table the mesh would apply: which model URI answers a
`Seldon-Model: <name>` request, with the experiment's weights and mirror.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .controllers import _Controller, _set_condition
from .events import record
from .store import Event, clone

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator

MODEL_FINALIZER = "seldon.model.finalizer"
EXPERIMENT_FINALIZER = "seldon.experiment.finalizer"
#: SELDON_SERVER_CAPABILITIES of the ServerConfigs Seldon installs
DEFAULT_CAPABILITIES = {
    "mlserver": [
        "mlserver",
        "alibi-detect",
        "alibi-explain",
        "huggingface",
        "lightgbm",
        "mlflow",
        "python",
        "sklearn",
        "spark-mlib",
        "xgboost",
    ],
    "triton": [
        "triton",
        "dali",
        "fil",
        "onnx",
        "openvino",
        "python",
        "pytorch",
        "tensorflow",
        "tensorrt",
    ],
}
MANAGER = "seldon-v2-controller-manager"
NO_SERVER = "Failed to schedule model as no matching servers are available"
NO_REPLICAS = "Failed to schedule model as no matching server had enough suitable replicas"


@dataclass
class _ModelState:
    generation: int
    phase: str  # progressing, available, failed, unscheduled
    uri: str
    server: str = ""
    due: float = 0.0
    #: the URI of the last version that became available (keeps serving during an update)
    serving: str = ""
    #: that version's number (the scheduler counts a Model's versions from 1)
    version: int = 0


@dataclass
class Route:
    """One backend of a `Seldon-Model` route: the model (version) that answers."""

    model: str
    model_uri: str
    weight: int
    mirror: bool = False
    mirror_percent: int = 0
    version: int = 1
    server: str = ""


@dataclass
class _ExperimentState:
    generation: int
    active: bool = False
    spec: dict[str, Any] = field(default_factory=dict)


class Seldon2Controller(_Controller):
    """Seldon Core 2 scheduler + operator for Models, Experiments and Servers."""

    group = "mlops.seldon.io"
    plural = "models"
    name = "seldon2"

    def __init__(self, emu: KubernetesEmulator, delay: float = 0.05) -> None:
        super().__init__(emu, delay)
        self.exp_rt = emu.registry.by_key("mlops.seldon.io/experiments")
        self.server_rt = emu.registry.by_key("mlops.seldon.io/servers")
        self.failure_message = "rclone copy failed: directory not found"
        self.models: dict[tuple[str, str], _ModelState] = {}
        self.experiments: dict[tuple[str, str], _ExperimentState] = {}
        #: called with (namespace, routes) whenever the routing table of a namespace changes
        self.route_listeners: list[Any] = []
        self._published: dict[str, set[str]] = {}

    # ------------------------------------------------------------------------- plumbing

    def start(self) -> None:
        if self._thread is not None:
            return
        super().start()
        for rt, kind in ((self.exp_rt, "experiment"), (self.server_rt, "server")):
            for obj in self.store.iter_objects(rt):
                self.enqueue(obj["metadata"]["namespace"], f"{kind}/{obj['metadata']['name']}", 0)

    def enqueue(self, ns: str, name: str, delay: float | None = None) -> None:
        if "/" not in name:
            name = f"model/{name}"
        super().enqueue(ns, name, delay)

    def _on_event(self, ev: Event) -> None:
        kinds = {self.rt.key: "model", self.exp_rt.key: "experiment", self.server_rt.key: "server"}
        kind = kinds.get(ev.rkey)
        if kind is None:
            return
        ns, name = ev.key.split("/", 1)
        self.enqueue(ns, f"{kind}/{name}", self.delay)

    def pod_selector(self, name: str) -> dict[str, str]:
        return {"seldon-server-name": name}

    def install_runtime(self, namespace: str = "default", replicas: int = 1) -> None:
        """The Servers a Seldon Core 2 runtime installs in a namespace: mlserver and triton."""
        for server in ("mlserver", "triton"):
            if self.store.get(self.server_rt, namespace, server) is None:
                self.store.create(
                    self.server_rt,
                    namespace,
                    {
                        "apiVersion": "mlops.seldon.io/v1alpha1",
                        "kind": "Server",
                        "metadata": {"name": server, "namespace": namespace},
                        "spec": {"serverConfig": server, "replicas": replicas},
                    },
                )

    def reconcile(self, ns: str, key: str) -> None:
        kind, name = key.split("/", 1)
        if kind == "server":
            self._reconcile_server(ns, name)
            for obj in list(self.store.iter_objects(self.rt, ns)):
                super().enqueue(ns, f"model/{obj['metadata']['name']}", 0)
        elif kind == "experiment":
            self._reconcile_experiment(ns, name)
        else:
            self._reconcile_model(ns, name)
            for server in list(self.store.iter_objects(self.server_rt, ns)):
                self._reconcile_server(ns, server["metadata"]["name"])
            for obj in list(self.store.iter_objects(self.exp_rt, ns)):
                super().enqueue(ns, f"experiment/{obj['metadata']['name']}", 0)
        self._publish(ns)

    def _write(self, rt: Any, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (obj.get("status") or {}):
            return  # updateModelStatus: no write when nothing changed
        body = clone(obj)
        body["status"] = status
        meta = obj["metadata"]
        self.store.update(rt, meta["namespace"], meta["name"], body, subresource="status")

    def _finalize(self, rt: Any, obj: dict[str, Any], finalizer: str) -> bool:
        """Handle our finalizer; True when the object needs no further reconcile."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            if finalizer in finalizers:
                body = clone(obj)
                body["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
                self.store.update(rt, meta["namespace"], meta["name"], body)
            return True
        if finalizer not in finalizers:
            body = clone(obj)
            body["metadata"]["finalizers"] = [*finalizers, finalizer]
            self.store.update(rt, meta["namespace"], meta["name"], body)
            return True
        return False

    # -------------------------------------------------------------------------- servers

    def _server_replicas(self, server: dict[str, Any]) -> int:
        return int((server.get("spec") or {}).get("replicas", 1))

    def capabilities(self, server: dict[str, Any]) -> list[str]:
        spec = server.get("spec") or {}
        caps = spec.get("capabilities") or DEFAULT_CAPABILITIES.get(spec.get("serverConfig"), [])
        return [*caps, *(spec.get("extraCapabilities") or [])]

    def _reconcile_server(self, ns: str, name: str) -> None:
        obj = self.store.get(self.server_rt, ns, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        status = clone(obj.get("status") or {})
        conds = status.setdefault("conditions", [])
        known = obj["spec"].get("serverConfig") in DEFAULT_CAPABILITIES
        reason = "" if known else f"ServerConfig {obj['spec'].get('serverConfig')} not found"
        for ctype in ("StatefulSetReady", "Ready"):
            _set_condition(conds, ctype, "True" if known else "False", "", reason)
        if known:
            self._ensure_pods(obj)
        status["loadedModels"] = sum(
            1 for (n, _), st in self.models.items() if n == ns and st.server == name
        )
        self._write(self.server_rt, obj, status)

    def _ensure_pods(self, server: dict[str, Any]) -> None:
        """The Server's StatefulSet pods `<server>-<i>`, labelled `seldon-server-name`, with
        the rclone, agent and server containers (operator/pkg/constants: ServerLabelNameKey)."""
        meta = server["metadata"]
        ns, name = meta["namespace"], meta["name"]
        have = {p["metadata"]["name"] for p in self.pods_of(ns, self.pod_selector(name))}
        for i in range(self._server_replicas(server)):
            pod_name = f"{name}-{i}"
            if pod_name in have:
                continue
            containers = ["rclone", "agent", server["spec"]["serverConfig"]]
            template = {
                "metadata": {"labels": {"app": "seldon-server", "seldon-server-name": name}},
                "spec": {
                    "containers": [{"name": c, "image": f"seldonio/{c}:2.6.0"} for c in containers]
                },
            }
            owner = {
                **self.owner_ref(server),
                "apiVersion": self.server_rt.api_version,
                "kind": "Server",
            }
            pod, _ = self.store.create(
                self.pod_rt,
                ns,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "labels": template["metadata"]["labels"],
                        "ownerReferences": [owner],
                    },
                    "spec": {**template["spec"], "nodeName": "emulated-node"},
                },
            )
            self.set_pod_phase(pod, "running")

    def append_log(
        self, name: str, line: str, *, namespace: str = "default", container: str | None = None
    ) -> list[str]:
        """Append a log line to the pods of the Server model `name` is scheduled on."""
        st = self.models.get((namespace, name))
        server = st.server if st is not None and st.server else name
        out = []
        for pod in self.pods_of(namespace, self.pod_selector(server)):
            c = container or "agent"
            self.store.logs.append(namespace, pod["metadata"]["name"], c, line)
            out.append(pod["metadata"]["name"])
        return out

    # --------------------------------------------------------------------------- models

    def _schedule(self, ns: str, spec: dict[str, Any]) -> tuple[str, str]:
        """(server, "") or ("", the scheduler's reason)."""
        requirements = [r.strip() for r in spec.get("requirements") or []]
        if spec.get("modelType"):
            requirements.append(spec["modelType"])
        replicas = int(spec.get("replicas", 1))
        fits = []
        for server in sorted(
            self.store.iter_objects(self.server_rt, ns), key=lambda s: s["metadata"]["name"]
        ):
            sname = server["metadata"]["name"]
            if server["metadata"].get("deletionTimestamp"):
                continue
            if spec.get("server") and spec["server"] != sname:
                continue
            if server["spec"].get("serverConfig") not in DEFAULT_CAPABILITIES and not server[
                "spec"
            ].get("capabilities"):
                continue  # no replicas came up, so no capabilities are known
            if self._server_replicas(server) == 0:
                continue
            if all(r in self.capabilities(server) for r in requirements):
                fits.append(server)
        if not fits:
            return "", NO_SERVER
        for server in fits:
            if self._server_replicas(server) >= replicas:
                return server["metadata"]["name"], ""
        return "", NO_REPLICAS

    def _model_status(
        self, obj: dict[str, Any], ready: bool, state: str, reason: str, replicas: int
    ) -> dict[str, Any]:
        status = clone(obj.get("status") or {})
        conds = status.setdefault("conditions", [])
        # CreateAndSetCondition(ModelReady, ready, message=state, reason=reason); Ready is the
        # living condition set over ModelReady
        for ctype in ("ModelReady", "Ready"):
            _set_condition(conds, ctype, "True" if ready else "False", reason, state)
        status["replicas"] = replicas
        return status

    def _reconcile_model(self, ns: str, name: str) -> None:
        key = (ns, name)
        obj = self.store.get(self.rt, ns, name)
        if obj is None:
            self.models.pop(key, None)
            return
        if self._finalize(self.rt, obj, MODEL_FINALIZER):
            if obj["metadata"].get("deletionTimestamp"):
                self.models.pop(key, None)
            return
        spec = obj["spec"]
        gen = int(obj["metadata"].get("generation", 1))
        st = self.models.get(key)
        replicas = int(spec.get("replicas", 1))
        if st is None or st.generation != gen:
            serving = st.serving if st is not None else ""
            version = st.version if st is not None else 0
            server, why = self._schedule(ns, spec) if replicas > 0 else ("", "")
            if replicas == 0:
                st = _ModelState(
                    gen, "unscheduled", spec["storageUri"], serving="", version=version
                )
                status = self._model_status(obj, False, "ScheduleFailed", "model has 0 replicas", 0)
            elif not server:
                st = _ModelState(
                    gen, "unscheduled", spec["storageUri"], serving=serving, version=version
                )
                status = self._model_status(obj, False, "ScheduleFailed", why, 0)
            else:
                st = _ModelState(
                    gen,
                    "progressing",
                    spec["storageUri"],
                    server,
                    time.monotonic() + self.delay,
                    serving,
                    version,
                )
                status = self._model_status(obj, False, "ModelProgressing", "", replicas)
            self.models[key] = st
            self._write(self.rt, obj, status)
            if st.phase == "progressing":
                super().enqueue(ns, f"model/{name}", self.delay)
            return
        if st.phase == "unscheduled" and replicas > 0:
            # ScheduleFailedModels: retried when Servers change
            server, why = self._schedule(ns, spec)
            if server:
                st.phase, st.server, st.due = "progressing", server, time.monotonic() + self.delay
                self._write(
                    self.rt, obj, self._model_status(obj, False, "ModelProgressing", "", replicas)
                )
                super().enqueue(ns, f"model/{name}", self.delay)
            return
        if st.phase != "progressing" or self.hold:
            return
        now = time.monotonic()
        if now < st.due:
            super().enqueue(ns, f"model/{name}", st.due - now)
            return
        if self.uri_fails(st.uri):
            st.phase = "failed"
            reason = f"{self.failure_message} ({st.uri})"
            self._write(
                self.rt, obj, self._model_status(obj, False, "ModelFailed", reason, replicas)
            )
            record(
                self.store,
                self.rt,
                obj,
                "Warning",
                "ModelNotReady",
                f"Model [{name}] is no longer Ready",
                MANAGER,
            )
            return
        st.phase, st.serving, st.version = "available", st.uri, st.version + 1
        self._write(self.rt, obj, self._model_status(obj, True, "ModelAvailable", "", replicas))

    def model_available(self, ns: str, name: str) -> bool:
        st = self.models.get((ns, name))
        return st is not None and st.phase == "available"

    # ---------------------------------------------------------------------- experiments

    def _refusal(self, ns: str, name: str, spec: dict[str, Any]) -> str:
        """StartExperiment's validation (the scheduler refuses; nothing becomes ready)."""
        if not spec.get("candidates"):
            return f"experiment {name} has no candidates"
        default = spec.get("default")
        if default:
            for (ens, ename), other in self.experiments.items():
                if ens == ns and ename != name and other.spec.get("default") == default:
                    return (
                        f"Model {default} already in experiment {ename} as a baseline. A model "
                        "can only appear in one experiment as a baseline model"
                    )
        if spec.get("resourceType") == "pipeline":
            return "pipeline experiments are not emulated"
        return ""

    def _reconcile_experiment(self, ns: str, name: str) -> None:
        key = (ns, name)
        obj = self.store.get(self.exp_rt, ns, name)
        if obj is None:
            self.experiments.pop(key, None)
            return
        if obj["metadata"].get("deletionTimestamp"):
            # StopExperiment: the scheduler stops routing by it, and its inactive event
            # releases the finalizer (S2-final)
            self.experiments.pop(key, None)
            self._publish(ns)
        if self._finalize(self.exp_rt, obj, EXPERIMENT_FINALIZER):
            return
        gen = int(obj["metadata"].get("generation", 1))
        spec = obj["spec"]
        st = self.experiments.get(key)
        if st is None or st.generation != gen:
            refused = self._refusal(ns, name, spec)
            if refused:
                # the operator's reconcile fails and retries; no status is written
                self.experiments[key] = _ExperimentState(gen, False, {})
                record(self.store, self.exp_rt, obj, "Warning", "StartFailed", refused, MANAGER)
                return
            # a new generation restarts the experiment (StartExperiment, active=false); the
            # scheduler activates it once its routes are synced
            st = self.experiments[key] = _ExperimentState(gen, False, clone(spec))
            super().enqueue(ns, f"experiment/{name}", self.delay)
            restarted = True
        else:
            restarted = False
        if not st.spec:
            return  # refused generation
        candidates = all(self.model_available(ns, c["name"]) for c in spec["candidates"])
        mirror = spec.get("mirror")
        mirror_ready = mirror is None or self.model_available(ns, mirror["name"])
        if not restarted and not self.hold:
            st.active = st.active or (candidates and mirror_ready)
        status = clone(obj.get("status") or {})
        conds = status.setdefault("conditions", [])
        _set_condition(conds, "ExperimentReady", "True" if st.active else "False")
        _set_condition(
            conds,
            "CandidatesReady",
            "True" if candidates else "False",
            "Candidates ready" if candidates else "Candidates not ready",
        )
        _set_condition(
            conds,
            "MirrorReady",
            "True" if mirror_ready else "False",
            "Mirror ready" if mirror_ready else "Mirror not ready",
        )
        happy = st.active and candidates and mirror_ready
        _set_condition(conds, "Ready", "True" if happy else "False")
        self._write(self.exp_rt, obj, status)

    # --------------------------------------------------------------------------- routes

    def routes(self, ns: str = "default") -> dict[str, list[Route]]:
        """What answers `Seldon-Model: <model>` (and `<experiment>.experiment`) now."""
        out: dict[str, list[Route]] = {}
        for (mns, model), st in sorted(self.models.items()):
            if mns == ns and st.serving:
                out[model] = [Route(model, st.serving, 100, version=st.version, server=st.server)]
        for (ens, ename), exp in sorted(self.experiments.items()):
            if ens != ns or not exp.active or not exp.spec:
                continue
            spec = exp.spec
            total = sum(int(c["weight"]) for c in spec["candidates"]) or 1
            backends = [
                Route(
                    c["name"], self._serving(ns, c["name"]), round(100 * int(c["weight"]) / total)
                )
                for c in spec["candidates"]
                if self._serving(ns, c["name"])
            ]
            if spec.get("mirror") and self._serving(ns, spec["mirror"]["name"]):
                m = spec["mirror"]
                backends.append(
                    Route(
                        m["name"],
                        self._serving(ns, m["name"]),
                        0,
                        True,
                        int(m["percent"]),
                        **self._placement(ns, m["name"]),
                    )
                )
            out[f"{ename}.experiment"] = backends
            if spec.get("default"):
                out[spec["default"]] = backends
        return out

    def _serving(self, ns: str, model: str) -> str:
        st = self.models.get((ns, model))
        return st.serving if st is not None else ""

    def _placement(self, ns: str, model: str) -> dict[str, Any]:
        st = self.models.get((ns, model))
        return {"version": st.version, "server": st.server} if st is not None else {}

    def _publish(self, ns: str) -> None:
        """Hand the mesh's routing table to the emulator's data plane (route key = the
        `Seldon-Model` header), withdrawing routes that no longer exist."""
        from .dataplane import Backend
        from .dataplane_metrics import seldon2_labels

        table = self.routes(ns)
        published = self._published.setdefault(ns, set())
        plane = self.emu.dataplane
        for key, routes in table.items():
            plane.publish(
                "seldon2",
                key,
                [
                    Backend(
                        # a model may be a candidate and the mirror at once: two backends
                        key=f"{r.model} (mirror)" if r.mirror else r.model,
                        model_uri=r.model_uri,
                        weight=r.weight,
                        mirror=r.mirror,
                        mirror_percent=r.mirror_percent if r.mirror else 100,
                        metric_labels=seldon2_labels(f"{r.model}_{r.version}", r.server),
                    )
                    for r in routes
                ],
            )
        for key in published - set(table):
            plane.withdraw("seldon2", key)
        self._published[ns] = set(table)
        for listener in list(self.route_listeners):
            listener(ns, table)
