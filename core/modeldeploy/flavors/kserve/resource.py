"""The `InferenceService` object: spec from a config, state from its status, URLs.

Field names follow the serving.kserve.io/v1beta1 CRD (KServe 0.20): `spec.predictor.model`
with `modelFormat`, `storageUri`, `runtime`, `protocolVersion`; `minReplicas`/`maxReplicas`
and `serviceAccountName` on the predictor.

Whether a status describes our write is never read from `status.observedGeneration`: KServe
copies it from a child object (the Knative Service, or the predictor Deployment in Standard
mode; kserve@v0.20.0 `pkg/apis/serving/v1beta1/inference_service_status.go:455-457,635`),
whose generation moves on its own (stop and start re-create it at 1; labels and annotations
are copied into its template). Instead each write records what it replaced (`mark`):

- Knative mode: the predictor's `latestCreatedRevision` at our write. Our write always rolls
  a revision (our annotations are part of the template), so a status is ours once a revision
  other than that one is the latest created; it serves once it is also the latest ready one
  and takes the traffic.
- Standard mode: the predictor Deployment's pod template carries our write mark (the
  InferenceService's annotations are copied into it) and its rollout is complete, judged as
  `kubectl rollout status` does: KServe keeps `PredictorReady` True while old pods serve.

The `serving.kserve.io/stop` annotation stops and starts a server; KServe reports it with the
`Stopped` condition.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlparse

from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kubernetes.deployments import deployment_failure, rollout_complete
from modeldeploy.flavors.kubernetes.freshness import (
    ANNOTATION_PREVIOUS_VERSION,
    FLAVOR_MARK_PREFIX,
)
from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.server import Observation
from modeldeploy.status import ServiceState

KIND = ResourceKind(
    group="serving.kserve.io",
    version="v1beta1",
    plural="inferenceservices",
    kind="InferenceService",
)
STOP_ANNOTATION = "serving.kserve.io/stop"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
POD_LABEL = "serving.kserve.io/inferenceservice"
CONTAINER = "kserve-container"
#: the latest created revision when we wrote (Knative mode), and a digest of the status
MARK_REVISION = FLAVOR_MARK_PREFIX + "revision"
MARK_STATUS = FLAVOR_MARK_PREFIX + "status"
STANDARD_MODES = ("Standard", "RawDeployment")

FAILED_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}
# Condition reasons that mean "this write will not come up". Knative: the revision failed
# (knative.dev/serving ConfigurationsReady/Ready reasons). Standard mode: the predictor
# Deployment's conditions (kserve@v0.20.0 inference_service_status.go:389-448) and the
# predictor's own checks (components/predictor.go:211,229,240). Model load failures and
# runtime resolution failures are read from `modelStatus` instead (`model_failure`).
TERMINAL_REASONS = {
    "RevisionFailed",
    "ContainerMissing",
    "ProgressDeadlineExceeded",
    "FailedCreate",
    "InvalidGPUAllocation",
    "InvalidWorkerSpecNotSet",
}
READY_CONDITIONS = ("Ready", "PredictorReady", "PredictorConfigurationReady")


def build_spec(config: KServeConfig, service_account: str | None) -> dict[str, Any]:
    model_format: dict[str, Any] = {"name": config.resolved_format()}
    if config.model_format_version:
        model_format["version"] = config.model_format_version
    model: dict[str, Any] = {"modelFormat": model_format, "storageUri": config.model_uri}
    protocol = config.written_protocol()
    if protocol:
        model["protocolVersion"] = protocol
    if config.runtime:
        model["runtime"] = config.runtime
    if config.resources is not None and config.resources.to_k8s():
        model["resources"] = config.resources.to_k8s()
    predictor: dict[str, Any] = {"model": model, "minReplicas": config.min_replicas}
    if config.max_replicas is not None:
        predictor["maxReplicas"] = config.max_replicas
    account = config.service_account_name or service_account
    if account:
        predictor["serviceAccountName"] = account
    return {"predictor": predictor}


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(c.get("type")): c
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type")
    }


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    raw = obj.get("status")
    return raw if isinstance(raw, dict) else {}


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def stop_requested(obj: dict[str, Any]) -> bool:
    return str(_annotations(obj).get(STOP_ANNOTATION, "")).lower() == "true"


def is_standard(obj: dict[str, Any]) -> bool:
    """Standard (RawDeployment) mode, from the status or the webhook-defaulted annotation."""
    mode = _status(obj).get("deploymentMode") or _annotations(obj).get(MODE_ANNOTATION)
    return mode in STANDARD_MODES


def predictor_status(obj: dict[str, Any]) -> dict[str, Any]:
    return (_status(obj).get("components") or {}).get("predictor") or {}


def status_digest(obj: dict[str, Any]) -> str:
    text = json.dumps(_status(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def mark(desired: dict[str, Any], replaced: dict[str, Any] | None) -> None:
    """Record the revision and status our write replaces (see the module docstring)."""
    meta = desired.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    before = replaced or {}
    annotations[MARK_REVISION] = str(predictor_status(before).get("latestCreatedRevision") or "")
    annotations[MARK_STATUS] = status_digest(before)
    annotations.setdefault(ANNOTATION_PREVIOUS_VERSION, "")
    meta["annotations"] = annotations


def knative_current(obj: dict[str, Any]) -> bool:
    """A revision created after our write exists, or the controller refused our spec."""
    annotations = _annotations(obj)
    created = predictor_status(obj).get("latestCreatedRevision")
    if created and created != annotations.get(MARK_REVISION, ""):
        return True
    # Runtime resolution fails before any revision is made (components/predictor.go:325-405).
    changed = status_digest(obj) != annotations.get(MARK_STATUS)
    transition = (_status(obj).get("modelStatus") or {}).get("transitionStatus")
    return changed and transition == "InvalidSpec"


def template_is_ours(obj: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """The Deployment's pod template was built from our write (its marks were copied in)."""
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    copied = template.get("annotations") or {}
    ours = _annotations(obj)
    return all(copied.get(k) == ours.get(k) for k in (ANNOTATION_PREVIOUS_VERSION, MARK_STATUS))


def may_conclude(obj: dict[str, Any]) -> bool:
    """Could `observe` say anything but "starting"? (Ready, or a failure shows.)"""
    status = _status(obj)
    conds = conditions(status)
    if (conds.get("Ready") or {}).get("status") == "True" or model_failure(status):
        return True
    return (
        any(
            (conds.get(c) or {}).get("status") == "False"
            and (conds.get(c) or {}).get("reason") in TERMINAL_REASONS
            for c in READY_CONDITIONS
        )
        or (conds.get("PredictorReady") or {}).get("status") == "False"
    )


def observe(obj: dict[str, Any], deployment: dict[str, Any] | None = None) -> Observation:
    """The state of a status that describes our write (`deployment`: Standard mode's)."""
    status = _status(obj)
    conds = conditions(status)
    stopped = conds.get("Stopped", {}).get("status") == "True"
    if stop_requested(obj):
        return Observation(ServiceState.INACTIVE if stopped else ServiceState.PENDING_SHUTDOWN)
    if stopped:
        return Observation(ServiceState.PENDING_STARTUP)

    failure = model_failure(status)
    if failure:
        return Observation(ServiceState.ERROR, failure)
    predictor = predictor_status(obj)
    created = predictor.get("latestCreatedRevision")
    ready_revision = predictor.get("latestReadyRevision")
    for ctype in READY_CONDITIONS:
        cond = conds.get(ctype) or {}
        if cond.get("status") == "False" and cond.get("reason") in TERMINAL_REASONS:
            return Observation(ServiceState.ERROR, failure_reason(status), ready_revision)
    if deployment is not None:
        problem = deployment_failure(deployment)
        if problem:
            return Observation(ServiceState.ERROR, problem)
    # A Ready=False without a terminal reason is transient, e.g. right after a resume:
    # "Predictor ingress not created", PredictorReady False/Stopped (kserve@v0.20.0
    # reconcilers/ingress/ingress_reconciler.go:487-497, components/predictor.go:880-881).
    if (conds.get("Ready") or {}).get("status") != "True":
        return Observation(ServiceState.PENDING_STARTUP, revision=ready_revision)
    if deployment is not None:
        done, _ = rollout_complete(deployment)
        return Observation(ServiceState.ACTIVE if done else ServiceState.PENDING_STARTUP)
    if not (created and created == ready_revision and _takes_traffic(predictor, created)):
        return Observation(ServiceState.PENDING_STARTUP, revision=ready_revision)
    return Observation(ServiceState.ACTIVE, revision=ready_revision)


def _takes_traffic(predictor: dict[str, Any], revision: str) -> bool:
    """All traffic goes to `revision` (Knative route), or no split is reported."""
    traffic = [t for t in predictor.get("traffic") or [] if isinstance(t, dict)]
    if not traffic:
        return True
    share = sum(
        int(t.get("percent") or 0)
        for t in traffic
        if t.get("revisionName") == revision or (t.get("latestRevision") and not t.get("tag"))
    )
    return share >= 100


def model_failure(status: dict[str, Any]) -> str | None:
    """KServe's model status says the model cannot load (bad URI, no runtime...)."""
    model = status.get("modelStatus") or {}
    states = model.get("states") or {}
    failed = (
        model.get("transitionStatus") in FAILED_TRANSITIONS
        or states.get("targetModelState") == "FailedToLoad"
        or states.get("activeModelState") == "FailedToLoad"
    )
    return failure_reason(status) if failed else None


def failure_reason(status: dict[str, Any]) -> str:
    """KServe's own words: the model's last failure, then each failed condition's message
    (the Ready condition repeats its components' messages, so repeats are dropped)."""
    parts: list[str] = []
    info = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if info.get("message") or info.get("reason"):
        parts.append(": ".join(str(x) for x in (info.get("reason"), info.get("message")) if x))
    conds = conditions(status)
    order = ["Ready", *sorted(k for k in conds if k != "Ready")]
    seen: set[str] = set()
    for ctype in order:
        cond = conds.get(ctype) or {}
        text = str(cond.get("message") or cond.get("reason") or "")
        if cond.get("status") != "False" or not text or text in seen:
            continue
        seen.add(text)
        parts.append(f"{ctype}: {text}")
    return "; ".join(parts) or "KServe reported the InferenceService as not ready"


def status_url(obj: dict[str, Any] | None, cluster_local: bool = False) -> str | None:
    """`status.url`, or with `cluster_local` the in-cluster `status.address.url`."""
    status = (obj or {}).get("status") or {}
    if cluster_local:
        address = status.get("address") or {}
        url = address.get("url") if isinstance(address, dict) else None
    else:
        url = status.get("url")
    return str(url).rstrip("/") if url else None


def prediction_path(protocol: str, model_name: str) -> str:
    if protocol == "v2":
        return f"/v2/models/{model_name}/infer"
    return f"/v1/models/{model_name}:predict"


def request_target(
    obj: dict[str, Any] | None, ingress: str | None, path: str, cluster_local: bool = False
) -> tuple[str, str | None] | None:
    """(URL to POST to, Host header) — through the ingress with the service's host if set.

    With path-based routing (`ingress.pathTemplate`), `status.url` carries a path prefix
    (kserve@v0.20.0 reconcilers/ingress/ingress_reconciler.go:177-189) that the ingress
    routes on, so it is kept when the request goes through `ingress`.
    """
    url = status_url(obj, cluster_local)
    if url is None:
        return None
    if ingress and not cluster_local:
        parsed = urlparse(url)
        return ingress + parsed.path.rstrip("/") + path, parsed.netloc
    return url + path, None
