"""Controller simulators for Seldon Core 1 and KServe.

They watch the store (not HTTP), and after a configurable delay move ``status`` the way the
real operators do, writing through the ``/status`` subresource path of the store so every
status they produce is validated against the CRD's status schema. They also run fake Pods
(labelled as the platforms label them, owned by the custom resource so the garbage collector
removes them) whose logs tests can append to.

Sources of the status shapes:
* Seldon Core 1.17 ``SeldonDeploymentReconciler``: ``state`` Creating -> Available, or
  Failed with ``description`` = the error; ``address.url`` is
  ``http://<sdep>-<predictor>.<ns>.svc.cluster.local:8000/api/v1.0/predictions``;
  ``deploymentStatus[<deployment>] = {replicas, availableReplicas}``; no
  ``observedGeneration`` is written (the 1.17 controller never sets it).
* KServe: see ``kserve.py``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import istio
from .errors import ApiError
from .events import record
from .store import Event, clone, now_ts, random_suffix

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator
    from .resources import ResourceType

#: the Deployments' progressDeadlineSeconds, 600 s upstream, scaled down for tests: still
#: several times the flavors' 1 s pod re-read, as 600 s is on a cluster (only waits scale)
PROGRESS_DEADLINE = 3.0


@dataclass
class _State:
    generation: int
    phase: str  # progressing, ready, failed, stopped, manual
    revision: str = ""
    due: float = 0.0
    ready_revision: str = ""
    pods: list[str] = field(default_factory=list)


class _Controller:
    """Shared machinery: event subscription, a delayed work queue, pods and status writes."""

    group = ""
    plural = ""
    name = "controller"

    def __init__(self, emu: KubernetesEmulator, delay: float = 0.05) -> None:
        self.emu = emu
        self.store = emu.store
        self.rt: ResourceType = emu.registry.by_key(f"{self.group}/{self.plural}")
        self.pod_rt: ResourceType = emu.registry.by_key("/pods")
        self.delay = delay
        #: model URIs starting with this (str or tuple of str) fail to load
        self.fail_when_uri_startswith: str | tuple[str, ...] | None = None
        #: failure text used in status when a URI fails
        self.failure_message = "failed to download model: endpoint unreachable"
        #: when True, new generations stay in progress forever (to test client timeouts)
        self.hold = False
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, tuple[str, str]]] = []
        self._due: dict[tuple[str, str], float] = {}
        self._seq = itertools.count()
        self._busy = False  # a reconcile is running (popped from the heap, not finished)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.state: dict[tuple[str, str], _State] = {}
        self.reconciles = 0

    # --------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start reconciling (and catch up with objects that already exist)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.store.add_listener(self._on_event)
        self._thread = threading.Thread(
            target=self._run, name=f"k8s-emulator-{self.name}", daemon=True
        )
        self._thread.start()
        for obj in self.store.iter_objects(self.rt):
            self.enqueue(obj["metadata"]["namespace"], obj["metadata"]["name"], 0.0)

    def stop(self) -> None:
        """Stop reconciling; objects keep whatever status they have (like a crashed operator)."""
        self.store.remove_listener(self._on_event)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _on_event(self, ev: Event) -> None:
        if ev.rkey != self.rt.key:
            return
        ns, name = ev.key.split("/", 1)
        self.enqueue(ns, name, self.delay)

    def enqueue(self, ns: str, name: str, delay: float | None = None) -> None:
        due = time.monotonic() + (self.delay if delay is None else delay)
        key = (ns, name)
        with self._cond:
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        due, _, key = heapq.heappop(self._heap)
                        if self._due.get(key) != due:
                            continue
                        del self._due[key]
                        self._busy = True
                        break
                    wait = (self._heap[0][0] - now) if self._heap else 0.5
                    self._cond.wait(min(wait, 0.5))
                else:
                    return
            try:
                self.reconciles += 1
                self.reconcile(*key)
            except ApiError as exc:
                if exc.code == 409:  # raced with a client write: retry like a real controller
                    self.enqueue(*key, 0.0)
                elif exc.code != 404:
                    self.emu.internal_errors.append(f"{self.name} reconcile {key}: {exc.status}")
            except Exception as exc:
                self.emu.internal_errors.append(
                    f"{self.name} reconcile {key}: {exc!r}\n{traceback.format_exc()}"
                )
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def reconcile(self, ns: str, name: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------------ helpers

    def uri_fails(self, uri: str | None) -> bool:
        prefix = self.fail_when_uri_startswith
        return bool(uri and prefix and uri.startswith(prefix))

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """PUT /status with the object's resourceVersion (conflicts bubble up and requeue)."""
        body = clone(obj)
        body["status"] = status
        meta = obj["metadata"]
        out, _ = self.store.update(
            self.rt, meta["namespace"], meta["name"], body, subresource="status"
        )
        return out

    def update_meta(
        self, obj: dict[str, Any], mutate: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        body = clone(obj)
        mutate(body["metadata"])
        meta = obj["metadata"]
        out, _ = self.store.update(self.rt, meta["namespace"], meta["name"], body)
        return out

    def owner_ref(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": self.rt.api_version,
            "kind": self.rt.kind,
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def pods_of(self, ns: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        return [
            p
            for p in self.store.iter_objects(self.pod_rt, ns)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def create_pod(
        self,
        owner: dict[str, Any],
        name: str,
        labels: dict[str, str],
        template: dict[str, Any],
        logs: dict[str, list[str]],
    ) -> dict[str, Any]:
        """A pod of ``owner``, as a ReplicaSet stamps it out of a pod ``template``: the
        template's labels (plus ``labels``), annotations and pod spec (containers and init
        containers with their images and args), which the kubelet then reports on."""
        ns = owner["metadata"]["namespace"]
        tmeta = template.get("metadata") or {}
        meta: dict[str, Any] = {"name": name, "labels": {**(tmeta.get("labels") or {}), **labels}}
        if tmeta.get("annotations"):
            meta["annotations"] = clone(tmeta["annotations"])
        meta["ownerReferences"] = [self.owner_ref(owner)]
        spec = clone(template.get("spec") or {})
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {**spec, "nodeName": "emulated-node", "restartPolicy": "Always"},
        }
        if not pod["spec"].get("initContainers"):
            pod["spec"].pop("initContainers", None)
        created, _ = self.store.create(self.pod_rt, ns, pod)
        for container, lines in logs.items():
            for line in lines:
                self.store.logs.append(ns, name, container, line)
        return created

    def set_pod_phase(self, pod: dict[str, Any], phase: str, failure: str = "") -> None:
        """Pod status for: ``starting`` (init running), ``running`` (ready), ``init-failed``."""
        spec = pod["spec"]
        images = {
            c["name"]: c.get("image", "")
            for c in [*(spec.get("initContainers") or []), *spec["containers"]]
        }
        init = [c["name"] for c in spec.get("initContainers") or []]
        apps = [c["name"] for c in spec["containers"]]
        ts = now_ts()
        ready = phase == "running"
        status: dict[str, Any] = {
            "phase": "Running" if ready else "Pending",
            "podIP": f"10.244.0.{hash(pod['metadata']['name']) % 200 + 10}",
            "startTime": pod["metadata"]["creationTimestamp"],
            "qosClass": "BestEffort",
            "conditions": [
                {
                    "type": "Initialized",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": ts,
                },
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts},
                {
                    "type": "ContainersReady",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": ts,
                },
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            ],
        }
        if init:
            if phase == "init-failed":
                term = {
                    "exitCode": 1,
                    "reason": "Error",
                    "message": failure,
                    "startedAt": ts,
                    "finishedAt": ts,
                }
                st: dict[str, Any] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 10s restarting failed container",
                    }
                }
                status["initContainerStatuses"] = [
                    {
                        "name": n,
                        "ready": False,
                        "restartCount": 1,
                        "state": st,
                        "lastState": {"terminated": term},
                        "image": images[n],
                        "imageID": "",
                    }
                    for n in init
                ]
            elif ready:
                status["initContainerStatuses"] = [
                    {
                        "name": n,
                        "ready": True,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "startedAt": ts,
                                "finishedAt": ts,
                            }
                        },
                        "image": images[n],
                        "imageID": "",
                    }
                    for n in init
                ]
            else:
                status["initContainerStatuses"] = [
                    {
                        "name": n,
                        "ready": False,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": ts}},
                        "image": images[n],
                        "imageID": "",
                    }
                    for n in init
                ]
        status["containerStatuses"] = [
            {
                "name": n,
                "ready": ready,
                "restartCount": 0,
                "started": ready,
                "state": {"running": {"startedAt": ts}}
                if ready
                else {"waiting": {"reason": "PodInitializing"}},
                "image": images[n],
                "imageID": "",
            }
            for n in apps
        ]
        body = clone(pod)
        body["status"] = status
        self.store.update(
            self.pod_rt,
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            body,
            subresource="status",
        )

    def delete_pod(self, pod: dict[str, Any]) -> None:
        try:
            self.store.delete(self.pod_rt, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    def append_log(
        self, name: str, line: str, *, namespace: str = "default", container: str | None = None
    ) -> list[str]:
        """Append a log line to the current pods of custom resource ``name``; returns pods."""
        pods = self.pods_of(namespace, self.pod_selector(name))
        out = []
        for pod in pods:
            c = container or pod["spec"]["containers"][0]["name"]
            self.store.logs.append(namespace, pod["metadata"]["name"], c, line)
            out.append(pod["metadata"]["name"])
        return out

    def pod_selector(self, name: str) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is scheduled (useful before asserting that nothing changes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._heap and not self._busy:
                    return True
                self._cond.wait(0.05)
        return False


def _set_condition(
    conds: list[dict[str, Any]],
    ctype: str,
    status: str,
    reason: str = "",
    message: str = "",
    severity: str = "",
) -> None:
    """knative apis.ConditionSet.SetCondition: keep lastTransitionTime when nothing changed;
    conditions stay sorted by type."""
    new: dict[str, Any] = {"type": ctype, "status": status}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    if severity:
        new["severity"] = severity
    for i, c in enumerate(conds):
        if c.get("type") == ctype:
            same = all(
                c.get(k, "") == new.get(k, "") for k in ("status", "reason", "message", "severity")
            )
            new["lastTransitionTime"] = c.get("lastTransitionTime") if same else now_ts()
            conds[i] = new
            break
    else:
        new["lastTransitionTime"] = now_ts()
        conds.append(new)
    conds.sort(key=lambda c: c["type"])


# ================================================================================== Seldon

#: (namespace, name, [(predictor, traffic, shadow)], the SeldonDeployment)
RoutesCallback = Callable[[str, str, list[tuple[str, int, bool]], dict[str, Any]], None]


def seldon_operator_name(name: str) -> str:
    """A name the Seldon 1 operator derives (Deployment, predictor key): past the 63
    characters of a label, `seldon-` and the md5 of the long name (GetDeploymentName,
    getPredictorKeyAutoGenerated)."""
    import hashlib

    return name if len(name) <= 63 else "seldon-" + hashlib.md5(name.encode()).hexdigest()


@dataclass
class _SeldonDeployment:
    """One Deployment the operator made for a predictor component, and its rollout."""

    predictor: str
    digest: str  # the pod template (the engine's predictor copy has traffic and replicas zeroed)
    replicas: int
    uris: list[str]
    phase: str = "progressing"  # progressing, ready, failed, scaled-to-zero
    pods: list[str] = field(default_factory=list)
    due: float = 0.0
    started: float = 0.0
    crashing: bool = False
    #: written in this reconcile: upstream reports only "identical" Deployments in
    #: status.deploymentStatus (createDeployments), so not until the next one
    fresh: bool = True


class SeldonController(_Controller):
    """SeldonDeployment (machinelearning.seldon.io/v1), Seldon Core 1.17 behaviour.

    Each predictor component gets its own Deployment, rolled only when its pod template
    changes; a change of `traffic` alone rolls nothing (the engine container's copy of the
    predictor has traffic and replicas zeroed, seldondeployment_engine.go
    createEngineContainer). The SeldonDeployment is Available only when every Deployment is
    (createDeployments); only then are the Istio routes (traffic weights, shadow mirror)
    applied and the Deployments of removed predictors deleted (completeServiceCreation).
    """

    group = "machinelearning.seldon.io"
    plural = "seldondeployments"
    name = "seldon"

    def __init__(self, emu: KubernetesEmulator, delay: float = 0.05) -> None:
        super().__init__(emu, delay)
        #: a model that cannot be downloaded stays ``Creating`` while the init container
        #: crash-loops, then after ``progress_deadline`` turns ``Failed`` with the generic
        #: description, as seldon-core@v1.17.1 does (seldondeployment_controller.go
        #: :1800-1829, 2137-2150); the cause is only on the pods
        self.progress_deadline = PROGRESS_DEADLINE
        self.deploy_rt = emu.registry.by_key("apps/deployments")
        #: per SeldonDeployment: its Deployments by name
        self.deployments: dict[tuple[str, str], dict[str, _SeldonDeployment]] = {}
        #: per SeldonDeployment: the routes last applied (what Istio's VirtualService says):
        #: [(predictor, weight, shadow)]
        self.routes: dict[tuple[str, str], list[tuple[str, int, bool]]] = {}
        #: called with (namespace, name, routes, obj) whenever routes are applied
        self.on_routes: list[RoutesCallback] = []
        #: the operator runs with Istio (ISTIO_ENABLED): it writes a VirtualService per
        #: SeldonDeployment; off, the routes still reach the data plane (Ambassador)
        self.istio = True
        self.vs_rt = emu.registry.by_key("networking.istio.io/virtualservices")

    def pod_selector(self, name: str) -> dict[str, str]:
        return {"seldon-deployment-id": name}

    @staticmethod
    def _walk(node: dict[str, Any], out: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out.append(node)
        for child in node.get("children") or []:
            if isinstance(child, dict):
                SeldonController._walk(child, out)
        return out

    @classmethod
    def predictor_uris(cls, pred: dict[str, Any]) -> dict[str, str]:
        """graph node name -> modelUri, for one predictor."""
        return {
            n.get("name", "model"): n["modelUri"]
            for n in cls._walk(pred.get("graph") or {}, [])
            if n.get("modelUri")
        }

    @classmethod
    def model_uris(cls, obj: dict[str, Any]) -> list[tuple[str, str]]:
        """(graph node name, modelUri) for every node of every predictor graph."""
        return [
            item
            for pred in (obj.get("spec") or {}).get("predictors") or []
            for item in cls.predictor_uris(pred).items()
        ]

    def _components(self, obj: dict[str, Any]) -> list[tuple[dict[str, Any], str, list[str]]]:
        """(predictor, deployment name, container names) as the operator would create."""
        sdep = obj["metadata"]["name"]
        out = []
        for pred in obj["spec"].get("predictors") or []:
            names = [n["name"] for n in self._walk(pred.get("graph") or {}, []) if n.get("name")]
            comps = pred.get("componentSpecs") or []
            if comps:
                for i, comp in enumerate(comps):
                    cs = [
                        c.get("name", "c")
                        for c in ((comp.get("spec") or {}).get("containers") or [])
                    ]
                    cs = cs or names[:1]
                    name = f"{sdep}-{pred['name']}-{i}-{'-'.join(cs)}"
                    out.append((pred, seldon_operator_name(name), cs))
            else:
                cs = names[:1] or ["model"]
                name = f"{sdep}-{pred['name']}-0-{'-'.join(cs)}"
                out.append((pred, seldon_operator_name(name), cs))
        return out

    def _replicas_of(self, obj: dict[str, Any], pred: dict[str, Any]) -> int:
        return int(pred.get("replicas", (obj.get("spec") or {}).get("replicas", 1)))

    def reconcile(self, ns: str, name: str) -> None:
        key = (ns, name)
        obj = self.store.get(self.rt, ns, name)
        if obj is None:
            self.state.pop(key, None)
            self.deployments.pop(key, None)
            if self.routes.pop(key, None) is not None:
                self.emu.dataplane.withdraw("seldon", f"{ns}/{name}")
            return
        if obj["metadata"].get("deletionTimestamp"):
            return
        gen = int(obj["metadata"].get("generation", 1))
        st = self.state.get(key)
        if st is not None and st.phase == "manual" and st.generation == gen:
            return
        if st is None or st.generation != gen:
            self._write_generation(obj, st is None)
            st = self.state[key] = _State(gen, "progressing")
            if self.hold:
                return
        elif self.hold:
            return
        deps = self.deployments.setdefault(key, {})
        now = time.monotonic()
        wake: list[float] = []
        for dep_name, dep in deps.items():
            dep.fresh = False
            if dep.phase == "progressing":
                wake.extend(self._progress(obj, dep_name, dep, now))
        self._sync_deployments(obj)
        if wake:
            self.enqueue(ns, name, max(min(wake), 0.0))
        status = self._status(obj)
        st.phase = {"Available": "ready", "Failed": "failed"}.get(status["state"], "progressing")
        if status != (obj.get("status") or {}):
            self.write_status(obj, status)

    def _write_generation(self, obj: dict[str, Any], first: bool) -> None:
        """A new generation: apply the Deployments; roll those whose template changed."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        deps = self.deployments.setdefault((ns, name), {})
        templates = self._apply_deployments(obj)
        now = time.monotonic()
        for pred, dep_name, containers in self._components(obj):
            template = templates[dep_name]
            digest = _template_digest(template)
            replicas = self._replicas_of(obj, pred)
            cur = deps.get(dep_name)
            if cur is not None and cur.digest == digest and cur.replicas == replicas:
                continue
            uris = self.predictor_uris(pred)
            rollout = _SeldonDeployment(
                pred["name"],
                digest,
                replicas,
                [uris[c] for c in containers if c in uris],
                due=now + self.delay,
                started=now,
            )
            rescale = cur is not None and cur.digest == digest and bool(cur.pods) and replicas > 0
            if rescale:  # the same pods serve (a scale starts or stops no pods here)
                assert cur is not None
                rollout.pods, rollout.phase, rollout.crashing = cur.pods, cur.phase, cur.crashing
                rollout.due, rollout.started = cur.due, cur.started
            elif replicas == 0:
                rollout.phase = "scaled-to-zero"
                for pod in self.pods_of(ns, {"app": dep_name}):
                    self.delete_pod(pod)
            else:
                logs = {
                    f"{c}-model-initializer": [f"Downloading {uris[c]}"]
                    for c in containers
                    if c in uris
                }
                for _ in range(replicas):
                    pod = self.create_pod(
                        obj,
                        f"{dep_name}-{digest[:10]}-{random_suffix(5)}",
                        {"pod-template-hash": digest[:10]},
                        template,
                        logs,
                    )
                    self.set_pod_phase(pod, "starting")
                    rollout.pods.append(pod["metadata"]["name"])
            deps[dep_name] = rollout
            # seldondeployment_controller.go createDeployments (fn)
            verb = "Created" if cur is None else "Updated"
            record(
                self.store,
                self.rt,
                obj,
                "Normal",
                f"{verb[:-1]}Deployment",
                f'{verb} Deployment "{dep_name}"',
                "seldon-controller-manager",
            )
        if first:
            for pred in obj["spec"].get("predictors") or []:
                record(
                    self.store,
                    self.rt,
                    obj,
                    "Normal",
                    "CreateService",
                    f'Created Service "{name}-{pred["name"]}"',
                    "seldon-controller-manager",
                )
        self._sync_deployments(obj)
        status = self._status(obj)
        if status != (obj.get("status") or {}):
            self.write_status(obj, status)
        self.enqueue(ns, name, self.delay)

    def _progress(
        self, obj: dict[str, Any], dep_name: str, dep: _SeldonDeployment, now: float
    ) -> list[float]:
        """Move one rolling Deployment on; returns when to look again (empty: settled)."""
        ns = obj["metadata"]["namespace"]
        if now < dep.due:
            return [dep.due - now]
        current = [
            p for p in self.pods_of(ns, {"app": dep_name}) if p["metadata"]["name"] in dep.pods
        ]
        failing = [u for u in dep.uris if self.uri_fails(u)]
        if failing:
            if not dep.crashing:  # the init container starts crash-looping
                dep.crashing = True
                for pod in current:
                    init = (pod["spec"].get("initContainers") or [{}])[0].get("name", "init")
                    msg = f'Init container "{init}" failed: {self.failure_message} ({failing[0]})'
                    self.store.logs.append(ns, pod["metadata"]["name"], init, f"ERROR {msg}")
                    self.set_pod_phase(pod, "init-failed", msg)
            left = dep.started + self.progress_deadline - now
            if left > 0:  # still progressing: the Deployment's deadline has not passed
                return [left]
            dep.phase = "failed"
            return []
        for pod in current:
            self.store.logs.append(
                ns,
                pod["metadata"]["name"],
                pod["spec"]["containers"][0]["name"],
                "Starting Seldon model server",
            )
            self.set_pod_phase(pod, "running")
        # the rolling update is over: the old ReplicaSet's pods go
        for pod in self.pods_of(ns, {"app": dep_name}):
            if pod["metadata"]["name"] not in dep.pods:
                self.delete_pod(pod)
        dep.phase = "ready"
        return []

    def _status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """createDeployments + the state switch (seldondeployment_controller.go:1714-1829,
        2137-2150): Available only when every Deployment has ready and no unavailable
        replicas; Failed when one is no longer progressing; else Creating. Once Available,
        completeServiceCreation applies the routes and deletes removed Deployments."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        key = (ns, name)
        deps = self.deployments.get(key, {})
        wanted = [d for _, d, _ in self._components(obj)]
        status = clone(obj.get("status") or {})
        statuses = dict(status.get("deploymentStatus") or {})
        for dep_name in wanted:
            dep = deps.get(dep_name)
            if dep is None or dep.fresh:
                continue
            pods = self.pods_of(ns, {"app": dep_name})
            ready = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
            statuses[dep_name] = {"replicas": len(pods), "availableReplicas": ready}
            if not ready:
                statuses[dep_name] = {"replicas": len(pods)}
        known = [deps.get(d) for d in wanted]
        not_ready = [d for d in known if d is None or d.phase != "ready" or not d.pods]
        conds = status.setdefault("conditions", [])
        _set_condition(conds, "ServicesReady", "True")
        spec_replicas = self._replicas_of(obj, (obj["spec"].get("predictors") or [{}])[0])
        status["replicas"] = spec_replicas
        if not_ready:
            failed = any(d is not None and d.phase == "failed" for d in not_ready)
            status["state"] = "Failed" if failed else "Creating"
            if failed:
                status["description"] = "Deployment is no longer progressing and not available."
            else:
                status.pop("description", None)
            for ctype in ("DeploymentsReady", "Ready"):
                _set_condition(
                    conds,
                    ctype,
                    "False",
                    "DeploymentsNotReady" if ctype == "DeploymentsReady" else "",
                    "Deployment does not have minimum availability.",
                )
            status["deploymentStatus"] = statuses
            return status
        # completeServiceCreation: routes applied, removed Deployments deleted
        self._apply_routes(obj)
        for dep_name in list(statuses):
            if dep_name not in wanted:
                statuses.pop(dep_name)
        for dep_name in [d for d in deps if d not in wanted]:
            deps.pop(dep_name)
            for pod in self.pods_of(ns, {"app": dep_name}):
                self.delete_pod(pod)
            try:
                self.store.delete(self.deploy_rt, ns, dep_name)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            record(
                self.store,
                self.rt,
                obj,
                "Normal",
                "DeleteDeployment",
                f'Deleted Deployment "{dep_name}"',
                "seldon-controller-manager",
            )
        for ctype in ("DeploymentsReady", "ServicesReady", "Ready"):
            _set_condition(conds, ctype, "True")
        _set_condition(
            conds,
            istio.CONDITION,
            "True",
            istio.READY_REASON if self.istio else istio.NOT_DEFINED_REASON,
        )
        status.pop("description", None)
        status.update(self._addresses(obj))
        status["state"] = "Available"
        status["deploymentStatus"] = statuses
        return status

    def _apply_routes(self, obj: dict[str, Any]) -> None:
        """The Istio VirtualService (seldondeployment_controller.go:303-411): one weighted
        destination per non-shadow predictor; the shadow is a mirror, `mirrorPercentage`
        = its traffic when above 0 (else every request is mirrored)."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        routes = [
            (p["name"], int(p.get("traffic") or 0), bool(p.get("shadow")))
            for p in obj["spec"].get("predictors") or []
        ]
        if self.routes.get((ns, name)) == routes:
            return
        self.routes[(ns, name)] = routes
        # the mesh applies a VirtualService at once here (no xDS push delay): the data
        # plane swaps in the same step, just before the write any reader could see
        self._publish(obj, routes)
        if self.istio:
            self._write_virtual_service(obj, routes)
        for callback in list(self.on_routes):
            callback(ns, name, routes, obj)

    def _write_virtual_service(
        self, obj: dict[str, Any], routes: list[tuple[str, int, bool]]
    ) -> None:
        """createIstioServices: create the VirtualService, or update its spec."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        vs_name = seldon_operator_name(name)
        spec = istio.virtual_service_spec(
            ns,
            name,
            [(p, seldon_operator_name(f"{name}-{p}"), w, shadow) for p, w, shadow in routes],
        )
        existing = self.store.get(self.vs_rt, ns, vs_name)
        if existing is None:
            body = {
                "apiVersion": self.vs_rt.api_version,
                "kind": self.vs_rt.kind,
                "metadata": {"name": vs_name, "ownerReferences": [self.owner_ref(obj)]},
                "spec": spec,
            }
            self.store.create(self.vs_rt, ns, body)
        elif existing.get("spec") != spec:
            self.store.update(self.vs_rt, ns, vs_name, {**clone(existing), "spec": spec})

    def _publish(self, obj: dict[str, Any], routes: list[tuple[str, int, bool]]) -> None:
        """The data plane follows the VirtualService: `/seldon/<ns>/<name>/` split by weight
        (one routed predictor takes everything: Istio's lone destination), the shadow
        mirrored, each predictor counted under the executor's labels."""
        from .dataplane import Backend
        from .dataplane_metrics import seldon_labels

        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        preds = {p["name"]: p for p in obj["spec"].get("predictors") or []}
        routed = [r for r in routes if not r[2]]
        backends = []
        for pred_name, traffic, shadow in routes:
            uris = list(self.predictor_uris(preds[pred_name]).values())
            labels = seldon_labels(name, pred_name)
            if shadow:
                backends.append(
                    Backend(
                        pred_name,
                        uris[0] if uris else "",
                        mirror=True,
                        mirror_percent=traffic or 100,
                        metric_labels=labels,
                    )
                )
            else:
                weight = 100 if len(routed) == 1 else traffic
                backends.append(
                    Backend(pred_name, uris[0] if uris else "", weight, metric_labels=labels)
                )
        self.emu.dataplane.publish("seldon", f"{ns}/{name}", backends)

    def _addresses(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`address.url` of the first predictor, `serviceStatus` per predictor
        (seldondeployment_controller.go:153-167, 265-295)."""
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
        spec = obj["spec"]
        first = spec["predictors"][0]
        protocol = spec.get("protocol", "seldon")
        graph_name = (first.get("graph") or {}).get("name", "model")
        if protocol in ("v2", "kfserving"):
            path = f"/v2/models/{graph_name}/infer"
        elif protocol == "tensorflow":
            path = f"/v1/models/{graph_name}:predict"
        else:
            path = "/api/v1.0/predictions"
        services = {}
        for pred in spec["predictors"]:
            s = f"{name}-{pred['name']}"
            services[s] = {
                "svcName": s,
                "httpEndpoint": f"{s}.{ns}:8000",
                "grpcEndpoint": f"{s}.{ns}:5001",
            }
        return {
            "address": {"url": f"http://{name}-{first['name']}.{ns}.svc.cluster.local:8000{path}"},
            "serviceStatus": services,
        }

    def _apply_deployments(self, obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The operator's Deployments (createDeployments), their pod templates by name. The
        engine container carries the predictor with traffic and replicas zeroed
        (createEngineContainer), so only a change of the graph or pod spec rolls pods."""
        import base64
        import json

        from . import deployments

        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        templates: dict[str, dict[str, Any]] = {}
        for pred, dep, containers in self._components(obj):
            uris = self.predictor_uris(pred)
            engine_copy = json.dumps({**pred, "traffic": 0, "replicas": 0}, sort_keys=True)
            labels = {
                "seldon-deployment-id": name,
                "seldon-app": seldon_operator_name(f"{name}-{pred['name']}"),
                "app": dep,
                "app.kubernetes.io/managed-by": "seldon-core",
            }
            spec: dict[str, Any] = {
                "containers": [
                    {"name": c, "image": f"emulated/{c}:latest"}
                    for c in [*containers, "seldon-container-engine"]
                ]
            }
            # the executor reads its predictor from base64 JSON (getEngineVarJson)
            engine_env = base64.b64encode(engine_copy.encode()).decode()
            spec["containers"][-1]["env"] = [{"name": "ENGINE_PREDICTOR", "value": engine_env}]
            init = [
                {
                    "name": f"{c}-model-initializer",
                    "image": "seldonio/rclone-storage-initializer:1.17.1",
                    "args": [uris[c], "/mnt/models"],
                }
                for c in containers
                if c in uris
            ]
            if init:
                spec["initContainers"] = init
            applied = deployments.apply(
                self.store,
                self.deploy_rt,
                self.owner_ref(obj),
                ns,
                dep,
                {"labels": labels},
                {"app": dep},
                {"metadata": {"labels": labels}, "spec": spec},
                self._replicas_of(obj, pred),
            )
            templates[dep] = applied["spec"]["template"]
        return templates

    def _sync_deployments(self, obj: dict[str, Any]) -> None:
        """What the Deployment controller writes on the operator's Deployments."""
        from . import deployments

        ns = obj["metadata"]["namespace"]
        for dep_name, dep in self.deployments.get((ns, obj["metadata"]["name"]), {}).items():
            if self.store.get(self.deploy_rt, ns, dep_name) is None:
                continue
            deployments.write_status(
                self.store,
                self.deploy_rt,
                ns,
                dep_name,
                self.pods_of(ns, {"app": dep_name}),
                set(dep.pods),
                dep.digest[:10],
                "ready" if dep.phase == "scaled-to-zero" else dep.phase,
            )

    def set_state(
        self, name: str, state: str, description: str = "", *, namespace: str = "default"
    ) -> dict[str, Any]:
        """Force ``status.state`` (Creating/Available/Failed) for the current generation."""
        obj = self.store.require(self.rt, namespace, name)
        gen = int(obj["metadata"].get("generation", 1))
        st = self.state.get((namespace, name)) or _State(gen, "manual")
        st.generation, st.phase = gen, "manual"
        self.state[(namespace, name)] = st
        status = clone(obj.get("status") or {})
        if state == "Available":
            status.update(self._addresses(obj))
            conds = status.setdefault("conditions", [])
            for ctype in ("DeploymentsReady", "ServicesReady", "Ready"):
                _set_condition(conds, ctype, "True")
        status["state"] = state
        if description:
            status["description"] = description
        else:
            status.pop("description", None)
        return self.write_status(obj, status)

    def set_ready(
        self, name: str, ready: bool = True, *, namespace: str = "default", message: str = ""
    ) -> dict[str, Any]:
        return self.set_state(
            name, "Available" if ready else "Failed", "" if ready else message, namespace=namespace
        )


def _template_digest(template: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
