"""KServe Standard-mode canaries: ``spec.canary[]`` (KServe 0.20; kserve/kserve#5672).

Upstream facts (FIDELITY.md rows K-C*; the PR threads are the only source, no 0.20 Go file
holding ``CanarySpec`` is in the code index):
- each canary is a Deployment and Service ``<isvc>-<predictor name>-predictor``, its predictor
  the canary's fields laid over the stable predictor's (#5672, ``mergo.Merge``);
- replicas: the canary's ``minReplicas``, else ``ceil(stable minReplicas * percent / 100)``
  (#5672 review of ``components/predictor.go`` ``canaryReplicaCount``);
- ``status.canaryStatuses[]`` (name, ready, trafficPercent, modelStatus; CRD) and the
  condition ``CanaryPredictorReady``, reason ``AllCanariesReady`` once every canary is ready,
  cleared when no canary is left (kserve ``test/e2e/predictor/test_canary_raw_deployment.py``);
- the route gives each *ready* canary its percent and the stable the rest; a canary that is
  not ready gets nothing (#5912 ``applyCanaryWeights``, gated on readiness by #5984);
- promotion retargets ``spec.predictor.name`` to a canary: that Deployment becomes the
  stable one with its pods (no restart when its template is unchanged) and the former
  stable Deployment goes; a canary removed from the list is deleted (#5672).
Where the threads are silent the stricter reading is taken and FIDELITY.md says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import deployments
from .controllers import _set_condition
from .dataplane import Backend
from .store import clone

if TYPE_CHECKING:
    from .kserve import KServeController, _Isvc

CONDITION = "CanaryPredictorReady"
ALL_READY = "AllCanariesReady"
#: not named in the threads (our choice)
NOT_READY = "CanaryNotReady"
#: "no autoscaling fields" on a canary predictor (#5672 validation; the field list is ours,
#: every autoscaling field of ComponentExtensionSpec in the CRD)
AUTOSCALING_FIELDS = ("maxReplicas", "scaleMetric", "scaleMetricType", "scaleTarget", "autoScaling")
NAME_CHANGE = "predictor.name change requires a model change (e.g. storageUri)"


def predictor_uri(pred: dict[str, Any]) -> str | None:
    """The predictor's storageUri (``model``/framework form, or a custom container's env)."""
    for val in pred.values():
        if isinstance(val, dict) and isinstance(val.get("storageUri"), str):
            return str(val["storageUri"])
    for c in pred.get("containers") or []:
        for env in c.get("env") or []:
            if env.get("name") == "STORAGE_URI":
                return str(env.get("value"))
    return None


def canaries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (obj.get("spec") or {}).get("canary") or [] if isinstance(c, dict)]


def deployment_name(isvc: str, predictor: dict[str, Any]) -> str:
    """``constants.PredictorServiceName(isvc, predictor.Name)``."""
    name = str(predictor.get("name") or "")
    return f"{isvc}-{name}-predictor" if name else f"{isvc}-predictor"


def merged(stable: dict[str, Any], canary: dict[str, Any]) -> dict[str, Any]:
    """``mergo.Merge(canary, stable)``: the canary's set fields over the stable's."""
    out = clone(canary)
    for key, value in stable.items():
        if key not in out or out[key] in (None, "", 0):
            out[key] = clone(value)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merged(value, out[key])
    return out


def webhook_message(obj: dict[str, Any], old: dict[str, Any] | None, mode: str) -> str | None:
    """The validating webhook's canary checks (#5672 ``inference_service_validation.go``)."""
    name = obj["metadata"].get("name", "")
    stable = (obj.get("spec") or {}).get("predictor") or {}
    if old is not None:
        before = (old.get("spec") or {}).get("predictor") or {}
        renamed = str(before.get("name") or "") != str(stable.get("name") or "")
        if renamed and predictor_uri(before) == predictor_uri(stable):
            return NAME_CHANGE
    listed = canaries(obj)
    if not listed:
        return None
    if mode != "Standard":
        return "spec.canary is only supported in Standard (RawDeployment) deployment mode"
    seen = {str(stable.get("name") or "")}
    total = 0
    for i, canary in enumerate(listed):
        pred = canary.get("predictor") or {}
        cname = str(pred.get("name") or "")
        if not cname:
            return f"spec.canary[{i}].predictor.name is required"
        if cname in seen:
            return f"spec.canary[{i}].predictor.name {cname!r} is not unique"
        seen.add(cname)
        dname = deployment_name(name, pred)
        if len(dname) > 63:
            return (
                f"spec.canary[{i}]: canary Deployment name {dname!r} exceeds 63 characters; "
                "shorten the InferenceService or canary name"
            )
        scaling = [f for f in AUTOSCALING_FIELDS if f in pred]
        if scaling:
            return (
                f"spec.canary[{i}].predictor: autoscaling fields are not allowed on a canary "
                f"({', '.join(scaling)})"
            )
        total += int(canary.get("trafficPercent") or 0)
    if total > 100:
        return f"sum of spec.canary[].trafficPercent must not exceed 100, got {total}"
    return None


@dataclass
class CanaryChild:
    """One canary's Deployment and pods."""

    deployment: str
    template: str
    uri: str
    pods: list[str] = field(default_factory=list)
    phase: str = "progressing"  # progressing, ready, failed
    due: float = 0.0
    deadline: float = 0.0
    failure: str = ""


class Canaries:
    """The canary half of the predictor reconcile (``reconcileCanaryDeployments``), run
    before the stable Deployment's (#5984)."""

    def __init__(self, ctl: KServeController) -> None:
        self.ctl = ctl

    def _template(self, obj: dict[str, Any], pred: dict[str, Any]) -> str:
        return self.ctl.template_of(obj, pred, self.ctl.runtime_of(pred))

    def reconcile(self, obj: dict[str, Any], st: _Isvc) -> None:
        ctl = self.ctl
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        stable = obj["spec"].get("predictor") or {}
        wanted: dict[str, dict[str, Any]] = {}
        for canary in canaries(obj):
            pred = merged(stable, canary.get("predictor") or {})
            wanted[deployment_name(name, pred)] = {"pred": pred, "canary": canary}
        self._adopt(obj, st, deployment_name(name, stable))
        for dname in [d for d in st.canaries if d not in wanted]:  # removed: rollback
            self.delete(ns, st.canaries.pop(dname))
        now = time.monotonic()
        for dname, want in wanted.items():
            child = st.canaries.get(dname)
            template = self._template(obj, want["pred"])
            if child is None or child.template != template:
                if child is not None:
                    self.delete(ns, child, keep_deployment=True)
                child = st.canaries[dname] = self._start(obj, dname, want, template)
            if child.phase != "progressing" or ctl.hold:
                continue
            if now < child.due:
                ctl.enqueue(ns, name, child.due - now)
                continue
            self._advance(obj, child, now)

    def _replicas(self, stable: dict[str, Any], canary: dict[str, Any]) -> int:
        pred = canary.get("predictor") or {}
        if pred.get("minReplicas") is not None:
            return int(pred["minReplicas"])
        base = int(stable.get("minReplicas") or 1)
        return math.ceil(base * int(canary.get("trafficPercent") or 0) / 100)

    def _start(
        self, obj: dict[str, Any], dname: str, want: dict[str, Any], template: str
    ) -> CanaryChild:
        ctl = self.ctl
        ns = obj["metadata"]["namespace"]
        pred = want["pred"]
        count = self._replicas(obj["spec"].get("predictor") or {}, want["canary"])
        dep = ctl.apply_deployment(obj, dname, pred, template, count)
        child = CanaryChild(deployment=dname, template=template, uri=predictor_uri(pred) or "")
        now = time.monotonic()
        child.due, child.deadline = now + ctl.delay, now + ctl.progress_deadline
        labels = {"app": f"isvc.{dname}", "pod-template-hash": template}
        child.pods = [
            ctl.new_pod(obj, f"{dname}-{template}", labels, dep["spec"]["template"], child.uri)
            for _ in range(count)
        ]
        self._write_deployment(obj, child)
        ctl.enqueue(ns, obj["metadata"]["name"], ctl.delay)
        return child

    def _advance(self, obj: dict[str, Any], child: CanaryChild, now: float) -> None:
        ctl = self.ctl
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        pods = [p for p in ctl.pods_of(ns, {"app": f"isvc.{child.deployment}"})]
        if ctl.uri_fails(child.uri):
            msg = f"{ctl.failure_message} (storageUri {child.uri})"
            if not child.failure:
                for pod in pods:
                    ctl.set_pod_phase(pod, "init-failed", msg)
                child.failure = msg
            if now < child.deadline:
                ctl.enqueue(ns, name, child.deadline - now)
                return
            child.phase = "failed"
        elif child.pods:
            for pod in pods:
                ctl.set_pod_phase(pod, "running")
            child.phase = "ready"
        # no pods (0 replicas): no ready endpoints, so never ready (stricter reading)
        self._write_deployment(obj, child)

    def _write_deployment(self, obj: dict[str, Any], child: CanaryChild) -> None:
        ctl = self.ctl
        ns = obj["metadata"]["namespace"]
        deployments.write_status(
            ctl.store,
            ctl.deploy_rt,
            ns,
            child.deployment,
            ctl.pods_of(ns, {"app": f"isvc.{child.deployment}"}),
            set(child.pods),
            child.template,
            child.phase,
        )

    def _adopt(self, obj: dict[str, Any], st: _Isvc, stable_dep: str) -> None:
        """Promotion: the stable predictor now names a canary's Deployment, which becomes
        the stable child with its pods; the former stable Deployment is deleted."""
        child = st.child
        promoted = st.canaries.get(stable_dep)
        if child is None or promoted is None or child.deployment == stable_dep:
            return
        ns = obj["metadata"]["namespace"]
        self.delete(ns, CanaryChild(deployment=child.deployment, template="", uri=""))
        del st.canaries[stable_dep]
        child.deployment = stable_dep
        child.template = promoted.template
        child.pods = list(promoted.pods)
        child.uri = promoted.uri
        child.phase = "ready" if promoted.phase == "ready" else "progressing"
        child.due = time.monotonic()
        child.deadline = promoted.deadline
        child.populated = True

    def delete(self, ns: str, child: CanaryChild, keep_deployment: bool = False) -> None:
        if not keep_deployment:
            self.ctl.delete_deployment(ns, child.deployment)
        for pod in self.ctl.pods_of(ns, {"app": f"isvc.{child.deployment}"}):
            self.ctl.delete_pod(pod)

    # -------------------------------------------------------------------------- status

    def decorate(self, obj: dict[str, Any], st: _Isvc | None, status: dict[str, Any]) -> None:
        """``canaryStatuses`` and ``CanaryPredictorReady`` for the canaries in the spec."""
        listed = canaries(obj)
        conds = status.setdefault("conditions", [])
        if not listed or st is None:
            status.pop("canaryStatuses", None)
            status["conditions"] = [c for c in conds if c.get("type") != CONDITION]
            return
        name = obj["metadata"]["name"]
        stable = obj["spec"].get("predictor") or {}
        out = []
        for canary in listed:
            pred = merged(stable, canary.get("predictor") or {})
            child = st.canaries.get(deployment_name(name, pred))
            ready = child is not None and child.phase == "ready"
            entry: dict[str, Any] = {
                "name": str(pred.get("name")),
                "ready": ready,
                "trafficPercent": int(canary.get("trafficPercent") or 0),
                "modelStatus": self._model_status(child),
            }
            out.append(entry)
        status["canaryStatuses"] = out
        if all(c["ready"] for c in out):
            _set_condition(conds, CONDITION, "True", ALL_READY)
        else:
            waiting = ", ".join(c["name"] for c in out if not c["ready"])
            _set_condition(conds, CONDITION, "False", NOT_READY, f"canaries not ready: {waiting}")

    @staticmethod
    def _model_status(child: CanaryChild | None) -> dict[str, Any]:
        if child is not None and child.failure:
            return {
                "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": child.failure,
                    "exitCode": 1,
                },
            }
        if child is not None and child.phase == "ready":
            return {
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate",
            }
        return {
            "states": {"activeModelState": "", "targetModelState": "Pending"},
            "transitionStatus": "InProgress",
        }

    def backends(
        self, st: _Isvc, status: dict[str, Any], isvc: str, stable_uri: str, stable_dep: str
    ) -> list[Backend]:
        """The HTTPRoute's weighted backendRefs: ready canaries their percent, the stable
        the rest (#5912, #5984)."""
        out: list[Backend] = []
        for entry in status.get("canaryStatuses") or []:
            if not entry.get("ready"):
                continue
            dname = f"{isvc}-{entry['name']}-predictor"
            child = st.canaries.get(dname)
            if child is not None:
                out.append(Backend(key=dname, model_uri=child.uri, weight=entry["trafficPercent"]))
        rest = 100 - sum(b.weight for b in out)
        return [Backend(key=stable_dep, model_uri=stable_uri, weight=max(rest, 0)), *out]
