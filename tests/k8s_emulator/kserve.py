"""KServe v0.20.0 InferenceService controller simulator, Knative and Standard modes.

Every behaviour cites kserve@v0.20.0 (``1fb78105``); tests/k8s_emulator/FIDELITY.md lists them
with the tests that pin them. The simulator keeps a *child* per InferenceService, like the
real controller: the Knative Service (Knative mode; kept in memory, the emulator serves no
Knative API) or the predictor ``apps/v1`` Deployment (Standard mode; a real stored object
that clients can read, scale and watch). What the child's template holds — the predictor
spec, the runtime, and the InferenceService's labels and annotations
(``components/predictor.go`` ``buildObjectMeta``) — decides when the child's generation moves,
and ``status.observedGeneration`` is copied from the child
(``inference_service_status.go`` ``PropagateStatus`` / ``PropagateRawStatus``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from . import deployments
from .controllers import PROGRESS_DEADLINE, _Controller, _set_condition
from .dataplane import Backend
from .dataplane_metrics import knative_labels
from .errors import ApiError
from .events import record
from .kserve_canary import Canaries, CanaryChild, deployment_name, predictor_uri
from .runtimes import RuntimeError_, select
from .store import Event, clone, random_suffix

if TYPE_CHECKING:
    from .emulator import KubernetesEmulator

KSERVE_FINALIZER = "inferenceservice.finalizers"
STOP_ANNOTATION = "serving.kserve.io/stop"
#: pkg/constants/constants.go EnableRoutingTagAnnotationKey: tag the latest revision `latest`
CANARY_FIELD = "canaryTrafficPercent"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
#: pkg/constants/constants.go StorageInitializerSourceUriInternalAnnotationKey
SOURCE_URI_ANNOTATION = "internal.serving.kserve.io/storage-initializer-sourceuri"
#: pkg/constants/constants.go serviceAnnotationDisallowedList: not copied into the template
DISALLOWED_ANNOTATIONS = frozenset(
    {
        "autoscaling.knative.dev/min-scale",
        "autoscaling.knative.dev/max-scale",
        SOURCE_URI_ANNOTATION,
        "kubectl.kubernetes.io/last-applied-configuration",
    }
)
#: legacy values normalised since 0.16 (pkg/constants/constants.go ParseDeploymentMode)
_MODES = {
    "Serverless": "Knative",
    "Knative": "Knative",
    "RawDeployment": "Standard",
    "Standard": "Standard",
}
_LEGACY_PREDICTORS = (
    "sklearn",
    "tensorflow",
    "xgboost",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)
_V2_BY_DEFAULT = ("triton", "onnx", "huggingface")


def mode_of(obj: dict[str, Any], default: str) -> str:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    return _MODES.get(ann.get(MODE_ANNOTATION, default), "Knative")


def default_isvc(obj: dict[str, Any], default_mode: str) -> None:
    """The mutating webhook (``inference_service_defaults.go`` ``DefaultInferenceService``):
    the deploymentMode annotation when the configured default is Standard, the legacy
    ``predictor.<framework>`` form rewritten into ``predictor.model`` (triton/onnx/huggingface
    default to protocol v2), and ``protocolVersion: v2`` for a triton ``model``."""
    meta = obj.setdefault("metadata", {})
    ann = meta.get("annotations") or {}
    if MODE_ANNOTATION not in ann and _MODES.get(default_mode) == "Standard":
        meta["annotations"] = dict(ann, **{MODE_ANNOTATION: default_mode})
    pred = (obj.get("spec") or {}).get("predictor")
    if not isinstance(pred, dict):
        return
    for fw in _LEGACY_PREDICTORS:
        ext = pred.get(fw)
        if isinstance(ext, dict):
            ext = dict(ext)
            if fw in _V2_BY_DEFAULT and ext.get("protocolVersion") is None:
                ext["protocolVersion"] = "v2"
            pred["model"] = dict(ext, modelFormat={"name": fw})
            del pred[fw]
            break
    model = pred.get("model")
    if (
        isinstance(model, dict)
        and model.get("protocolVersion") is None
        and (model.get("modelFormat") or {}).get("name") == "triton"
    ):
        model["protocolVersion"] = "v2"


@dataclass
class _Child:
    """The Knative Service (in memory) or the predictor Deployment's rollout bookkeeping."""

    generation: int = 1
    template: str = ""
    revision: str = ""
    ready_revision: str = ""
    rolled_out: str = ""
    previous_rolled_out: str = ""
    phase: str = "progressing"  # progressing, ready, failed
    due: float = 0.0
    deadline: float = 0.0
    pods: list[str] = field(default_factory=list)
    populated: bool = False  # the child has reported a status (after a resume: not yet)
    failure: str = ""  # the latest created revision's failure (Knative: RevisionFailed)
    #: Knative: pods of every revision still created (a routed older revision keeps serving)
    revision_pods: dict[str, list[str]] = field(default_factory=dict)
    revision_uris: dict[str, str] = field(default_factory=dict)  # storageUri per revision
    hosts: set[str] = field(default_factory=set)  # routes published to the data plane
    #: Standard mode: the stable predictor's Deployment and the storageUri its ready pods serve
    deployment: str = ""
    uri: str = ""


@dataclass
class _Isvc:
    child: _Child | None = None
    stopped: bool = False
    manual: str | None = None  # template frozen by set_ready()
    #: Standard mode: ``spec.canary[]`` Deployments by name (kserve_canary)
    canaries: dict[str, CanaryChild] = field(default_factory=dict)


class KServeController(_Controller):
    """InferenceService (serving.kserve.io/v1beta1) in Knative or Standard mode."""

    group = "serving.kserve.io"
    plural = "inferenceservices"
    name = "kserve"

    def __init__(self, emu: KubernetesEmulator, delay: float = 0.05) -> None:
        super().__init__(emu, delay)
        self.domain = "example.com"
        self.use_finalizer = True
        self.replicas = 1
        #: inferenceservice-config ``deploy.defaultDeploymentMode`` (Knative or Standard)
        self.default_deployment_mode = "Knative"
        #: seconds a Standard-mode Deployment may make no progress (progressDeadlineSeconds,
        #: 600 upstream; scaled down, the logic is the same)
        self.progress_deadline = PROGRESS_DEADLINE
        #: when set, the Standard-mode Deployment cannot create pods (quota, pod security):
        #: ReplicaFailure=True/FailedCreate with this message
        self.fail_create_message: str | None = None
        self.isvcs: dict[tuple[str, str], _Isvc] = {}
        self.deploy_rt = emu.registry.by_key("apps/deployments")
        self.canary = Canaries(self)

    # ------------------------------------------------------------------------ plumbing

    def _on_event(self, ev: Event) -> None:
        if ev.rkey == self.deploy_rt.key:  # an HPA or a person scaled/edited the Deployment
            ns, name = ev.key.split("/", 1)
            dep = self.store.get(self.deploy_rt, ns, name) or {}
            owners = [
                o["name"]
                for o in (dep.get("metadata") or {}).get("ownerReferences") or []
                if o.get("kind") == self.rt.kind
            ]
            if owners:
                self.enqueue(ns, owners[0], self.delay)
            elif name.endswith("-predictor"):
                self.enqueue(ns, name[: -len("-predictor")], self.delay)
            return
        super()._on_event(ev)

    def pod_selector(self, name: str) -> dict[str, str]:
        return {"serving.kserve.io/inferenceservice": name, "component": "predictor"}

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """``updateStatus`` (controller.go): write only on change, and record the Ready
        transitions as events (InferenceServiceReady / InferenceServiceNotReady)."""
        if status.get("deploymentMode") == "Standard":  # + canaryStatuses (kserve_canary)
            status = clone(status)
            meta = obj["metadata"]
            self.canary.decorate(obj, self.isvcs.get((meta["namespace"], meta["name"])), status)
        if (obj.get("status") or {}) == status:
            return obj

        def ready(st: dict[str, Any]) -> bool:
            return any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in st.get("conditions") or []
            )

        was = ready(obj.get("status") or {})
        self._publish({**obj, "status": status})  # the route applies before it is reported
        out = super().write_status(obj, status)
        name = obj["metadata"]["name"]
        if was and not ready(status):
            self.event(
                out,
                "Warning",
                "InferenceServiceNotReady",
                f"InferenceService [{name}] is no longer Ready",
            )
        elif not was and ready(status):
            self.event(
                out, "Normal", "InferenceServiceReady", f"InferenceService [{name}] is Ready"
            )
        return out

    def _publish(self, obj: dict[str, Any]) -> None:
        """Hand the data plane what the Knative route now does: the InferenceService's and
        the predictor's hosts split by revision, each tag's host to its revision alone."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        st = self.isvcs.get((ns, name))
        child = st.child if st is not None else None
        status = obj.get("status") or {}
        traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic")
        if st is not None and child is not None and status.get("deploymentMode") == "Standard":
            self._publish_standard(obj, st, child)
            return
        if child is None or status.get("deploymentMode") != "Knative" or not traffic:
            return
        ksvc = f"{name}-predictor"

        def backends(targets: list[dict[str, Any]]) -> list[Backend]:
            shares: dict[str, int] = {}
            for t in targets:
                shares[t["revisionName"]] = shares.get(t["revisionName"], 0) + t["percent"]
            return [
                Backend(
                    key=rev,
                    model_uri=child.revision_uris.get(rev, ""),
                    weight=weight,
                    metric_labels=knative_labels(ns, ksvc, rev),
                )
                for rev, weight in shares.items()
            ]

        urls = self._urls(obj, "Knative")
        routes = {urlparse(urls["url"]).hostname: traffic}
        routes[urlparse(urls["predictor"]).hostname] = traffic
        for t in traffic:
            if t.get("url"):
                routes[urlparse(t["url"]).hostname] = [{**t, "percent": 100}]
        plane = self.emu.dataplane
        for host in child.hosts - set(routes):
            plane.withdraw("kserve", host)
        for host, targets in routes.items():
            plane.publish("kserve", str(host), backends(targets), model_name=name)
        child.hosts = {str(h) for h in routes}

    def _publish_standard(self, obj: dict[str, Any], st: _Isvc, child: _Child) -> None:
        """Standard mode: the ingress (or HTTPRoute) hosts to the stable Deployment and the
        ready canaries by weight, once the stable one serves. No queue-proxy runs beside
        these pods, so the backends carry no request-metric labels."""
        status = obj.get("status") or {}
        if not status.get("url") or not child.uri:
            return
        urls = self._urls(obj, "Standard")
        name = obj["metadata"]["name"]
        backends = self.canary.backends(st, status, name, child.uri, child.deployment)
        hosts = {str(urlparse(urls[k]).hostname) for k in ("url", "predictor")}
        plane = self.emu.dataplane
        for host in child.hosts - hosts:
            plane.withdraw("kserve", host)
        for host in hosts:
            plane.publish("kserve", host, backends, model_name=name)
        child.hosts = hosts

    def _withdraw(self, child: _Child | None) -> None:
        for host in child.hosts if child is not None else ():
            self.emu.dataplane.withdraw("kserve", host)

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str) -> None:
        record(self.store, self.rt, obj, etype, reason, message, "v1beta1Controllers")

    @staticmethod
    def storage_uri(obj: dict[str, Any]) -> str | None:
        return predictor_uri((obj.get("spec") or {}).get("predictor") or {})

    @staticmethod
    def runtime_of(pred: dict[str, Any]) -> str:
        model = pred.get("model")
        if not isinstance(model, dict):
            return ""
        try:
            return select(model)[0]
        except RuntimeError_:
            return ""

    def _template(self, obj: dict[str, Any], runtime: str) -> str:
        return self.template_of(obj, obj["spec"].get("predictor") or {}, runtime)

    def template_of(self, obj: dict[str, Any], predictor: dict[str, Any], runtime: str) -> str:
        """What ``buildObjectMeta`` + the pod spec put into the child's template."""
        meta = obj["metadata"]
        ann = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in DISALLOWED_ANNOTATIONS
        }
        # canaryTrafficPercent goes into the Knative route, not the revision template
        # (ksvc_reconciler.go createKnativeService: RouteSpec.Traffic)
        pred = {k: v for k, v in predictor.items() if k != CANARY_FIELD}
        data = [pred, meta.get("labels") or {}, ann, runtime]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]

    # ------------------------------------------------------------------------ reconcile

    def reconcile(self, ns: str, name: str) -> None:
        key = (ns, name)
        obj = self.store.get(self.rt, ns, name)
        if obj is None:
            self._withdraw((self.isvcs.pop(key, None) or _Isvc()).child)
            return
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            self._withdraw((self.isvcs.get(key) or _Isvc()).child)
            self._delete_child(obj)
            if KSERVE_FINALIZER in (meta.get("finalizers") or []):
                self.update_meta(
                    obj,
                    lambda m: m.__setitem__(
                        "finalizers", [f for f in m["finalizers"] if f != KSERVE_FINALIZER]
                    ),
                )
            self.isvcs.pop(key, None)
            return
        if self.use_finalizer and KSERVE_FINALIZER not in (meta.get("finalizers") or []):
            obj = self.update_meta(
                obj,
                lambda m: m.__setitem__(
                    "finalizers", [*(m.get("finalizers") or []), KSERVE_FINALIZER]
                ),
            )
            meta = obj["metadata"]
        st = self.isvcs.setdefault(key, _Isvc())
        mode = mode_of(obj, self.default_deployment_mode)
        if (meta.get("annotations") or {}).get(STOP_ANNOTATION, "").lower() == "true":
            # components/predictor.go: the child is deleted and the status cleared
            if st.child is not None or not st.stopped:
                self._withdraw(st.child)
                self._delete_child(obj)
                st.child, st.stopped = None, True
                self.write_status(obj, self._stopped_status(obj, mode))
            return
        model = (obj["spec"].get("predictor") or {}).get("model")
        runtime = ""
        if isinstance(model, dict):
            try:
                runtime, _protocol = select(model)
            except RuntimeError_ as exc:
                if (obj.get("status") or {}).get("modelStatus", {}).get("lastFailureInfo") != {
                    "reason": exc.reason,
                    "message": exc.message,
                }:
                    fmt = model.get("modelFormat") or {}
                    self.event(
                        obj,
                        "Warning",
                        "InternalError",
                        "no runtime found to support predictor with model type: "
                        f"{{{fmt.get('name')} {fmt.get('version') or '<nil>'}}}"
                        if exc.reason == "NoSupportingRuntime" and not model.get("runtime")
                        else exc.message,
                    )
                self.write_status(obj, self._invalid_spec_status(obj, mode, exc))
                return
        if mode == "Standard":
            self.canary.reconcile(obj, st)  # canaries before the stable (kserve#5984)
        template = self._template(obj, runtime)
        if st.manual is not None:
            if st.manual == template:
                return
            st.manual = None
        resumed = st.stopped
        child = st.child
        if child is None or child.template != template:
            if child is None:
                child = st.child = _Child(generation=1)
            else:
                child.generation += 1
            child.template = template
            st.stopped = False
            self._roll(obj, child, mode, runtime, resumed)
            return
        if mode == "Standard":
            dep = self._sync_deployment(obj, child, runtime)
            seen = (dep.get("status") or {}).get("observedGeneration")
            if child.phase != "progressing" and seen != dep["metadata"]["generation"]:
                # the Deployment controller observes a scale (HPA) or another edit: the
                # ISVC copies its new observedGeneration (PropagateRawStatus)
                self._write_deployment_status(obj, child)
                status = (
                    self._ready_status(obj, child, mode, runtime)
                    if child.phase == "ready"
                    else self._progress_status(obj, child, mode, runtime)
                )
                self.write_status(obj, status)
                return
        if child.phase != "progressing":
            if mode == "Knative":  # a canaryTrafficPercent change moves the route only
                self.write_status(obj, self._settled_status(obj, child, runtime))
            else:  # the canaries' statuses and the route's weights
                self.write_status(obj, clone(obj.get("status") or {}))
            return
        if self.hold:
            return
        now = time.monotonic()
        if now < child.due:
            self.enqueue(ns, name, child.due - now)
            return
        if not child.populated:  # first status of a re-created child
            child.populated = True
            child.due = now + self.delay
            self.write_status(obj, self._progress_status(obj, child, mode, runtime))
            self.enqueue(ns, name, self.delay)
            return
        self._advance(obj, child, mode, runtime)

    def _roll(
        self, obj: dict[str, Any], child: _Child, mode: str, runtime: str, resumed: bool
    ) -> None:
        """A new child generation: a new Knative revision or a new Deployment template."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        child.phase = "progressing"
        child.due = time.monotonic() + self.delay
        child.deadline = time.monotonic() + self.progress_deadline
        child.populated = not resumed  # the resume transient comes first
        if mode == "Knative":
            # Knative names revisions after the Configuration's generation, which follows
            # the ksvc template: ``<ksvc>-<generation %05d>``
            child.revision = f"{name}-predictor-{child.generation:05d}"
            labels = {
                "serving.knative.dev/revision": child.revision,
                "serving.knative.dev/configuration": f"{name}-predictor",
                "app": child.revision,
            }
            child.pods = [self._new_pod(obj, f"{child.revision}-deployment", labels)]
            child.revision_pods[child.revision] = list(child.pods)
            child.revision_uris[child.revision] = self.storage_uri(obj) or ""
            child.failure = ""
        else:
            dname = self._deployment_name(obj)
            if child.deployment and child.deployment != dname:  # renamed: the old one goes
                self.delete_deployment(ns, child.deployment)
            child.deployment = dname
            dep = self._sync_deployment(obj, child, runtime)
            child.revision = ""
            if self.fail_create_message is None:
                labels = {"app": f"isvc.{dname}", "pod-template-hash": child.template}
                count = int(dep["spec"].get("replicas", 1))
                child.pods = [
                    self._new_pod(obj, f"{dname}-{child.template}", labels, dep["spec"]["template"])
                    for _ in range(max(count, 1))
                ]
            else:
                child.pods = []
            self._write_deployment_status(obj, child)
            record(
                self.store,
                self.deploy_rt,
                dep,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {dep['metadata']['name']}-{child.template} to "
                f"{int(dep['spec'].get('replicas', 1))}",
                "deployment-controller",
            )
        status = (
            self._resume_status(obj, mode)
            if not child.populated
            else self._progress_status(obj, child, mode, runtime)
        )
        self.write_status(obj, status)
        self.enqueue(ns, name, self.delay)

    def _new_pod(
        self,
        obj: dict[str, Any],
        prefix: str,
        labels: dict[str, str],
        template: dict[str, Any] | None = None,
    ) -> str:
        return self.new_pod(obj, prefix, labels, template, self.storage_uri(obj))

    def new_pod(
        self,
        obj: dict[str, Any],
        prefix: str,
        labels: dict[str, str],
        template: dict[str, Any] | None,
        uri: str | None,
    ) -> str:
        """A predictor pod: stamped from the Deployment's ``template`` (Standard mode) or the
        revision's (Knative), then given the storage initializer by KServe's pod webhook."""
        meta = obj["metadata"]
        if template is None:  # the Knative revision's pod template (not served)
            template = {
                "metadata": {"annotations": {SOURCE_URI_ANNOTATION: uri} if uri else {}},
                "spec": {
                    "containers": [
                        {"name": c, "image": f"emulated/{c}:latest"}
                        for c in ("kserve-container", "queue-proxy")
                    ]
                },
            }
        template = clone(template)
        source = (template.get("metadata") or {}).get("annotations", {}).get(SOURCE_URI_ANNOTATION)
        if source:
            # pkg/webhook/admission/pod/storage_initializer_injector.go: the init container
            # copies the annotated URI into /mnt/models (its two arguments)
            template["spec"]["initContainers"] = [
                {
                    "name": "storage-initializer",
                    "image": "kserve/storage-initializer:emulated",
                    "args": [source, "/mnt/models"],
                }
            ]
        pod = self.create_pod(
            obj,
            f"{prefix}-{random_suffix(10)}-{random_suffix(5)}",
            {
                **(meta.get("labels") or {}),
                "serving.kserve.io/inferenceservice": meta["name"],
                "component": "predictor",
                **labels,
            },
            template,
            {"storage-initializer": [f"Copying contents of {uri} to local"]} if uri else {},
        )
        self.set_pod_phase(pod, "starting")
        return str(pod["metadata"]["name"])

    def _current_pods(self, obj: dict[str, Any], child: _Child) -> list[dict[str, Any]]:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        return [
            p
            for p in self.pods_of(ns, self.pod_selector(name))
            if p["metadata"]["name"] in child.pods
        ]

    def _advance(self, obj: dict[str, Any], child: _Child, mode: str, runtime: str) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        uri = self.storage_uri(obj)
        current = self._current_pods(obj, child)
        if mode == "Standard" and self.fail_create_message is not None:
            self.write_status(obj, self._progress_status(obj, child, mode, runtime))
            return
        if self.uri_fails(uri):
            msg = f"{self.failure_message} (storageUri {uri})"
            if child.phase == "progressing" and not any(
                (p.get("status") or {}).get("initContainerStatuses", [{}])[0].get("lastState")
                for p in current
            ):
                for pod in current:
                    self.store.logs.append(
                        ns, pod["metadata"]["name"], "storage-initializer", f"ERROR: {msg}"
                    )
                    self.set_pod_phase(pod, "init-failed", msg)
            if mode == "Standard" and time.monotonic() < child.deadline:
                # the Deployment keeps progressing until its deadline; modelStatus already
                # shows the pods' failure (PropagateModelStatus)
                self.write_status(obj, self._failed_status(obj, child, mode, runtime, msg, False))
                self.enqueue(ns, name, child.deadline - time.monotonic())
                return
            child.phase = "failed"
            child.failure = msg
            if mode == "Standard":
                self._write_deployment_status(obj, child)
            self.write_status(obj, self._failed_status(obj, child, mode, runtime, msg, True))
            return
        for pod in current:
            self.store.logs.append(
                ns,
                pod["metadata"]["name"],
                "kserve-container",
                "INFO:     Uvicorn running on http://0.0.0.0:8080",
            )
            self.set_pod_phase(pod, "running")
        child.phase = "ready"
        if mode == "Knative":
            child.ready_revision = child.revision
            self.write_status(obj, self._settled_status(obj, child, runtime))
            return
        child.uri = uri or ""
        for pod in self.pods_of(ns, {"app": f"isvc.{child.deployment}"}):
            if pod["metadata"]["name"] not in child.pods:
                self.delete_pod(pod)
        self._write_deployment_status(obj, child)
        self.write_status(obj, self._ready_status(obj, child, mode, runtime))

    # ------------------------------------------------------------ the Knative route (canary)

    def _settled_status(self, obj: dict[str, Any], child: _Child, runtime: str) -> dict[str, Any]:
        """Knative mode once the latest revision is ready or failed: the route as the ISVC's
        canaryTrafficPercent asks; revisions the route no longer names lose their pods."""
        if child.phase == "failed":
            status = self._failed_status(obj, child, "Knative", runtime, child.failure, True)
        else:
            status = self._ready_status(obj, child, "Knative", runtime)
        pred = (status.get("components") or {}).get("predictor") or {}
        keep = {t["revisionName"] for t in pred.get("traffic") or []} | {child.revision}
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        for rev in [r for r in child.revision_pods if r not in keep]:
            del child.revision_pods[rev]
        live = {p for pods in child.revision_pods.values() for p in pods}
        for pod in self.pods_of(ns, self.pod_selector(name)):
            if pod["metadata"]["name"] not in live:
                self.delete_pod(pod)
        return status

    def _tag_url(self, obj: dict[str, Any], tag: str) -> str:
        """Knative's tag route host, default ``tag-template`` ``{{.Tag}}-{{.Name}}`` (the ksvc
        is ``<isvc>-predictor``)."""
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
        return f"http://{tag}-{name}-predictor.{ns}.{self.domain}"

    def _route(self, obj: dict[str, Any], child: _Child) -> list[dict[str, Any]]:
        """``ksvc_reconciler.go`` createKnativeService: with canaryTrafficPercent and a rolled
        out revision, the latest ready revision gets the percent (tag ``latest`` with tag
        routing) and the last rolled-out one, tag ``prev``, the rest; else latest 100 %.
        Knative resolves ``latestRevision: true`` to the latest *ready* revision."""
        if not child.ready_revision:
            return []
        ctp = (obj["spec"].get("predictor") or {}).get(CANARY_FIELD)
        ann = (obj["metadata"].get("annotations") or {}).get(TAG_ROUTING_ANNOTATION)
        latest_tag = "latest" if ann == "true" else None

        def target(rev: str, percent: int, latest: bool, tag: str | None) -> dict[str, Any]:
            out: dict[str, Any] = {"latestRevision": latest, "percent": percent}
            out["revisionName"] = rev
            if tag:
                out["tag"], out["url"] = tag, self._tag_url(obj, tag)
            return out

        if ctp is None or not child.rolled_out:
            return [target(child.ready_revision, 100, True, latest_tag)]
        traffic = [target(child.ready_revision, int(ctp), True, latest_tag)]
        if int(ctp) < 100:
            traffic.append(target(child.rolled_out, 100 - int(ctp), False, "prev"))
        return traffic

    @staticmethod
    def _propagate_rollout(child: _Child, traffic: list[dict[str, Any]]) -> None:
        """``inference_service_status.go`` PropagateStatus: a latest ready revision at 100 %
        is rolled out (the former one becomes previous); a split over one revision that was
        already rolled out rolls the record back to the previous one."""
        per_revision: dict[str, int] = {}
        for t in traffic:
            per_revision[t["revisionName"]] = per_revision.get(t["revisionName"], 0) + t["percent"]
        for t in traffic:
            if t["revisionName"] != child.ready_revision or not t["latestRevision"]:
                continue
            if child.rolled_out != child.ready_revision:
                if t["percent"] == 100:
                    child.previous_rolled_out = child.rolled_out
                    child.rolled_out = child.ready_revision
            elif (
                child.ready_revision == child.revision
                and t["percent"] < 100
                and per_revision.get(t["revisionName"]) == 100
                and child.previous_rolled_out
            ):
                child.rolled_out = child.previous_rolled_out

    def _traffic(self, obj: dict[str, Any], child: _Child) -> list[dict[str, Any]]:
        """Route, then PropagateStatus, until the record stops moving (the real controller
        gets there over consecutive reconciles)."""
        for _ in range(3):
            before = (child.rolled_out, child.previous_rolled_out)
            traffic = self._route(obj, child)
            self._propagate_rollout(child, traffic)
            if before == (child.rolled_out, child.previous_rolled_out):
                break
        return traffic

    def _knative_predictor(self, obj: dict[str, Any], child: _Child) -> dict[str, Any]:
        """The revision fields of ``components.predictor`` (Knative mode)."""
        traffic = self._traffic(obj, child)
        pred: dict[str, Any] = {"latestCreatedRevision": child.revision}
        if child.ready_revision:
            pred["latestReadyRevision"] = child.ready_revision
            pred["traffic"] = traffic
        if child.rolled_out:
            pred["latestRolledoutRevision"] = child.rolled_out
        if child.previous_rolled_out:
            pred["previousRolledoutRevision"] = child.previous_rolled_out
        return pred

    # ------------------------------------------------------------- the Standard Deployment

    def _deployment_name(self, obj: dict[str, Any]) -> str:
        return deployment_name(obj["metadata"]["name"], obj["spec"].get("predictor") or {})

    def _sync_deployment(self, obj: dict[str, Any], child: _Child, runtime: str) -> dict[str, Any]:
        """Create or update ``<isvc>-predictor`` (reconcilers/deployment): the template carries
        the InferenceService's labels and annotations."""
        pred = obj["spec"].get("predictor") or {}
        return self.apply_deployment(
            obj, self._deployment_name(obj), pred, child.template, int(pred.get("minReplicas") or 1)
        )

    def apply_deployment(
        self, obj: dict[str, Any], dname: str, pred: dict[str, Any], template_hash: str, count: int
    ) -> dict[str, Any]:
        """Create or update a predictor Deployment (stable or canary) from ``pred``."""
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        app = {"app": f"isvc.{dname}"}
        labels = {
            **(meta.get("labels") or {}),
            "serving.kserve.io/inferenceservice": name,
            "component": "predictor",
            **app,
        }
        ann = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in DISALLOWED_ANNOTATIONS
        }
        uri = predictor_uri(pred)
        runtime = self.runtime_of(pred)
        pod_spec: dict[str, Any] = {
            "containers": [
                {
                    "name": "kserve-container",
                    "image": f"{runtime or 'custom'}:emulated",
                    "env": [{"name": "MODELDEPLOY_TEMPLATE", "value": template_hash}],
                }
            ]
        }
        if uri:  # components/predictor.go: the pod webhook injects the initializer from it
            ann = {**ann, SOURCE_URI_ANNOTATION: uri}
        template = {"metadata": {"labels": labels, "annotations": ann}, "spec": pod_spec}
        return deployments.apply(
            self.store,
            self.deploy_rt,
            self.owner_ref(obj),
            ns,
            dname,
            {"labels": labels, "annotations": ann},
            app,
            template,
            count,
            keep_replicas=True,  # the HPA owns replicas once the Deployment exists
        )

    def _write_deployment_status(self, obj: dict[str, Any], child: _Child) -> dict[str, Any]:
        ns = obj["metadata"]["namespace"]
        return deployments.write_status(
            self.store,
            self.deploy_rt,
            ns,
            self._deployment_name(obj),
            self.pods_of(ns, {"app": f"isvc.{self._deployment_name(obj)}"}),
            set(child.pods),
            child.template,
            child.phase,
            self.fail_create_message,
        )

    def _delete_child(self, obj: dict[str, Any]) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        st = self.isvcs.get((ns, name))
        self.delete_deployment(ns, self._deployment_name(obj))
        for canary in (st.canaries if st is not None else {}).values():
            self.delete_deployment(ns, canary.deployment)
        if st is not None:
            st.canaries.clear()
        for pod in self.pods_of(ns, self.pod_selector(name)):
            self.delete_pod(pod)

    def delete_deployment(self, ns: str, name: str) -> None:
        try:
            self.store.delete(self.deploy_rt, ns, name, {})
        except ApiError as exc:
            if exc.code != 404:
                raise

    # --------------------------------------------------------------------------- statuses

    def _urls(self, obj: dict[str, Any], mode: str) -> dict[str, str]:
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
        if mode == "Standard":  # ingress domainTemplate {{ .Name }}-{{ .Namespace }}
            return {
                "url": f"http://{name}-{ns}.{self.domain}",
                "internal": f"http://{name}-predictor.{ns}.svc.cluster.local",
                "predictor": f"http://{name}-predictor-{ns}.{self.domain}",
                "predictor_internal": f"http://{name}-predictor.{ns}.svc.cluster.local",
            }
        return {
            "url": f"http://{name}.{ns}.{self.domain}",
            "internal": f"http://{name}.{ns}.svc.cluster.local",
            "predictor": f"http://{name}-predictor.{ns}.{self.domain}",
            "predictor_internal": f"http://{name}-predictor.{ns}.svc.cluster.local",
        }

    def _base(self, obj: dict[str, Any], mode: str, runtime: str) -> dict[str, Any]:
        status = clone(obj.get("status") or {})
        status["deploymentMode"] = mode
        status.setdefault("conditions", [])
        if runtime:
            status["clusterServingRuntimeName"] = runtime
        # controller.go: Stopped is always present, False unless stopped
        _set_condition(status["conditions"], "Stopped", "False")
        return status

    def _observed(self, obj: dict[str, Any], child: _Child, mode: str) -> int:
        if mode == "Standard":
            dep = self.store.get(
                self.deploy_rt, obj["metadata"]["namespace"], self._deployment_name(obj)
            )
            return int(((dep or {}).get("status") or {}).get("observedGeneration") or 0)
        return child.generation

    def _standard_predictor(self, obj: dict[str, Any]) -> tuple[str, str, str]:
        """``PropagateRawStatus``: PredictorReady from the Deployment's conditions."""
        dep = self.store.get(
            self.deploy_rt, obj["metadata"]["namespace"], self._deployment_name(obj)
        )
        conds = {c["type"]: c for c in ((dep or {}).get("status") or {}).get("conditions") or []}
        avail, prog, fail = (
            conds.get("Available"),
            conds.get("Progressing"),
            conds.get("ReplicaFailure"),
        )
        out = ("False", "", "")
        if avail and avail["status"] == "True":
            out = ("True", avail.get("reason", ""), avail.get("message", ""))
        if prog:
            if prog["status"] == "False":
                if prog.get("message"):
                    out = ("False", prog.get("reason", ""), prog["message"])
            elif prog.get("reason") == "NewReplicaSetAvailable":
                out = ("True", prog["reason"], prog.get("message", ""))
            elif not (avail and avail["status"] == "True"):
                out = ("Unknown", prog.get("reason", ""), prog.get("message", ""))
            else:
                # 0.20 keeps True during a rollout while old pods are available
                # (inference_service_status.go:414-418)
                out = ("True", avail.get("reason", ""), avail.get("message", ""))
        if avail and avail["status"] == "False":
            out = ("False", avail.get("reason", ""), avail.get("message", ""))
        if fail and fail["status"] == "True":
            out = ("False", fail.get("reason", ""), fail.get("message", ""))
        return out

    def _conditions_standard(self, status: dict[str, Any], obj: dict[str, Any]) -> bool:
        conds = status["conditions"]
        st, reason, message = self._standard_predictor(obj)
        if st == "True":
            reason = message = ""
        # ingress_reconciler.go: IngressReady follows the predictor until it is ready
        for ctype in ("PredictorReady", "IngressReady", "Ready"):
            _set_condition(conds, ctype, st, reason, message)
        return st == "True"

    def _progress_status(
        self, obj: dict[str, Any], child: _Child, mode: str, runtime: str
    ) -> dict[str, Any]:
        status = self._base(obj, mode, runtime)
        status["observedGeneration"] = self._observed(obj, child, mode)
        conds = status["conditions"]
        ms = status.get("modelStatus") or {}
        states = ms.get("states") or {"activeModelState": ""}
        states["targetModelState"] = "Pending"
        status["modelStatus"] = {"states": states, "transitionStatus": "InProgress"}
        if "copies" in ms:
            status["modelStatus"]["copies"] = ms["copies"]
        if mode == "Standard":
            if self._conditions_standard(status, obj):
                urls = self._urls(obj, mode)
                status["url"], status["address"] = urls["url"], {"url": urls["internal"]}
            return status
        config = f"{obj['metadata']['name']}-predictor"
        why = f'Configuration "{config}" is waiting for a Revision to become ready.'
        for ctype in ("PredictorConfigurationReady", "PredictorReady", "Ready"):
            _set_condition(conds, ctype, "Unknown", "RevisionMissing", why)
        _set_condition(
            conds, "LatestDeploymentReady", "Unknown", "PredictorConfigurationReady not ready"
        )
        if not any(c["type"] == "PredictorRouteReady" for c in conds) or not child.ready_revision:
            _set_condition(conds, "PredictorRouteReady", "Unknown", "RevisionMissing", why)
            _set_condition(conds, "RoutesReady", "Unknown", "PredictorRouteReady not ready")
        if not any(c["type"] == "IngressReady" for c in conds) or not child.ready_revision:
            _set_condition(conds, "IngressReady", "Unknown")
        pred = status.setdefault("components", {}).setdefault("predictor", {})
        pred.update(self._knative_predictor(obj, child))
        return status

    def _resume_status(self, obj: dict[str, Any], mode: str) -> dict[str, Any]:
        """First status after a resume (K3): the new child's empty status is propagated, so
        PredictorReady keeps False/Stopped, IngressReady turns False, no observedGeneration."""
        status: dict[str, Any] = {"deploymentMode": mode, "conditions": []}
        conds = status["conditions"]
        # Knative: the new ksvc has no Ready yet, SetCondition(nil) keeps False/Stopped;
        # Standard: PropagateRawStatus of a Deployment without conditions marks False, no reason
        _set_condition(conds, "PredictorReady", "False", "Stopped" if mode == "Knative" else "")
        _set_condition(conds, "IngressReady", "False", "", "Predictor ingress not created")
        _set_condition(conds, "Ready", "False", "", "Predictor ingress not created")
        _set_condition(conds, "Stopped", "False")
        if mode == "Knative":
            _set_condition(conds, "RoutesReady", "Unknown", "PredictorRouteReady not ready")
            _set_condition(
                conds, "LatestDeploymentReady", "Unknown", "PredictorConfigurationReady not ready"
            )
        return status

    def _ready_status(
        self, obj: dict[str, Any], child: _Child, mode: str, runtime: str
    ) -> dict[str, Any]:
        status = self._base(obj, mode, runtime)
        status["observedGeneration"] = self._observed(obj, child, mode)
        conds = status["conditions"]
        urls = self._urls(obj, mode)
        status["url"] = urls["url"]
        status["address"] = {"url": urls["internal"]}
        if mode == "Standard":
            self._conditions_standard(status, obj)
            status["components"] = {
                "predictor": {
                    "url": urls["predictor"],
                    "address": {"url": urls["predictor_internal"]},
                }
            }
        else:
            for ctype in (
                "IngressReady",
                "LatestDeploymentReady",
                "PredictorConfigurationReady",
                "PredictorReady",
                "PredictorRouteReady",
                "Ready",
                "RoutesReady",
            ):
                _set_condition(conds, ctype, "True")
            pred: dict[str, Any] = {
                **self._knative_predictor(obj, child),
                "url": urls["predictor"],
                "address": {"url": urls["predictor_internal"]},
            }
            status["components"] = {"predictor": pred}
        status["modelStatus"] = {
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate",
            "copies": {"failedCopies": 0, "totalCopies": max(len(child.pods), 1)},
        }
        return status

    def _failed_status(
        self,
        obj: dict[str, Any],
        child: _Child,
        mode: str,
        runtime: str,
        msg: str,
        final: bool,
    ) -> dict[str, Any]:
        status = self._base(obj, mode, runtime)
        status["observedGeneration"] = self._observed(obj, child, mode)
        conds = status["conditions"]
        if mode == "Standard":
            self._conditions_standard(status, obj)
        else:
            why = f'Revision "{child.revision}" failed with message: {msg}.'
            for ctype in ("PredictorConfigurationReady", "PredictorReady", "Ready"):
                _set_condition(conds, ctype, "False", "RevisionFailed", why)
            _set_condition(
                conds, "LatestDeploymentReady", "False", "PredictorConfigurationReady not ready"
            )
            pred = status.setdefault("components", {}).setdefault("predictor", {})
            pred.update(self._knative_predictor(obj, child))
        ms = status.get("modelStatus") or {}
        states = ms.get("states") or {"activeModelState": ""}
        states["targetModelState"] = "FailedToLoad"
        # inference_service_status.go PropagateModelStatus: reason, message (the storage
        # initializer's termination message, i.e. its log tail) and exit code only
        status["modelStatus"] = {
            "states": states,
            "transitionStatus": "BlockedByFailedLoad",
            "lastFailureInfo": {"reason": "ModelLoadFailed", "message": msg, "exitCode": 1},
        }
        return status

    def _invalid_spec_status(
        self, obj: dict[str, Any], mode: str, exc: RuntimeError_
    ) -> dict[str, Any]:
        """reconcileModel failed: InvalidSpec with the runtime reason; conditions stay as
        initialised (Unknown)."""
        status = self._base(obj, mode, "")
        conds = status["conditions"]
        for ctype in ("IngressReady", "PredictorReady", "Ready"):
            if not any(c["type"] == ctype for c in conds):
                _set_condition(conds, ctype, "Unknown")
        status["modelStatus"] = {
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "transitionStatus": "InvalidSpec",
            "lastFailureInfo": {"reason": exc.reason, "message": exc.message},
        }
        return status

    def _stopped_status(self, obj: dict[str, Any], mode: str) -> dict[str, Any]:
        """components/predictor.go: status cleared but deploymentMode; PredictorReady
        False/Stopped; IngressReady False/Stopped; Stopped True (controller.go)."""
        status: dict[str, Any] = {"deploymentMode": mode}
        conds: list[dict[str, Any]] = []
        for ctype in ("IngressReady", "PredictorReady", "Ready"):
            _set_condition(conds, ctype, "False", "Stopped")
        _set_condition(conds, "Stopped", "True")
        status["conditions"] = conds
        return status

    # ----------------------------------------------------------------------- test controls

    def set_ready(
        self,
        name: str,
        ready: bool = True,
        *,
        namespace: str = "default",
        reason: str = "",
        message: str = "",
    ) -> dict[str, Any]:
        """Force the Ready/PredictorReady conditions now (e.g. a crash after rollout); the
        controller leaves this template alone afterwards."""
        obj = self.store.require(self.rt, namespace, name)
        st = self.isvcs.setdefault((namespace, name), _Isvc())
        mode = mode_of(obj, self.default_deployment_mode)
        child = st.child
        st.manual = child.template if child is not None else ""
        status = self._base(
            obj, mode, str((obj.get("status") or {}).get("clusterServingRuntimeName", ""))
        )
        for ctype in ("PredictorReady", "Ready"):
            if ready:
                _set_condition(status["conditions"], ctype, "True")
            else:
                _set_condition(
                    status["conditions"], ctype, "False", reason or "RevisionFailed", message
                )
        return self.write_status(obj, status)
