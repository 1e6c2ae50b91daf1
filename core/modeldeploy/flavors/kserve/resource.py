"""The `InferenceService` object: spec from a config, state from its conditions, URLs.

Field names follow the serving.kserve.io/v1beta1 CRD (KServe 0.20): `spec.predictor.model`
with `modelFormat`, `storageUri`, `runtime`, `protocolVersion`; `minReplicas`/`maxReplicas`
and `serviceAccountName` on the predictor. Readiness is the `Ready` condition once
`status.observedGeneration` has caught up with our write, and (serverless mode) once the
predictor's latest created revision is also its latest ready one, so a Ready left over from
the previous revision is never taken for the new model. The `serving.kserve.io/stop`
annotation stops and starts a server; KServe reports it with the `Stopped` condition.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from modeldeploy.flavors.kserve.config import KServeConfig
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
POD_LABEL = "serving.kserve.io/inferenceservice"
CONTAINER = "kserve-container"

FAILED_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}
# Ready=False reasons that mean "this revision will not come up" even in raw deployment
# mode, where Ready is False while a Deployment is still rolling out.
TERMINAL_REASONS = {
    "ProgressDeadlineExceeded",
    "RevisionFailed",
    "ContainerMissing",
    "InvalidSpec",
    "ModelLoadFailed",
    "NoSupportingRuntime",
    "RuntimeNotRecognized",
    "InvalidPredictorSpec",
}


def build_spec(config: KServeConfig, service_account: str | None) -> dict[str, Any]:
    model_format: dict[str, Any] = {"name": config.resolved_format()}
    if config.model_format_version:
        model_format["version"] = config.model_format_version
    model: dict[str, Any] = {
        "modelFormat": model_format,
        "storageUri": config.model_uri,
        "protocolVersion": config.protocol_version,
    }
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


def stop_requested(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(STOP_ANNOTATION, "")).lower() == "true"


def observe(obj: dict[str, Any]) -> Observation:
    status = obj.get("status") or {}
    conds = conditions(status)
    stopped = conds.get("Stopped", {}).get("status") == "True"
    if stop_requested(obj):
        return Observation(ServiceState.INACTIVE if stopped else ServiceState.PENDING_SHUTDOWN)
    if stopped:
        return Observation(ServiceState.PENDING_STARTUP)

    failure = model_failure(status)
    if failure:
        return Observation(ServiceState.ERROR, failure)
    ready = conds.get("Ready") or {}
    predictor = (status.get("components") or {}).get("predictor") or {}
    created = predictor.get("latestCreatedRevision")
    ready_revision = predictor.get("latestReadyRevision")
    if ready.get("status") == "True":
        if created and ready_revision and created != ready_revision:
            return Observation(ServiceState.PENDING_STARTUP, revision=ready_revision)
        return Observation(ServiceState.ACTIVE, revision=ready_revision or created)
    if ready.get("status") == "False" and (
        ready.get("reason") in TERMINAL_REASONS
        or status.get("deploymentMode") not in ("RawDeployment", "Standard")
    ):
        return Observation(ServiceState.ERROR, failure_reason(status), ready_revision)
    return Observation(ServiceState.PENDING_STARTUP, revision=ready_revision)


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


def status_url(obj: dict[str, Any] | None) -> str | None:
    url = ((obj or {}).get("status") or {}).get("url")
    return str(url).rstrip("/") if url else None


def prediction_path(config: KServeConfig, name: str) -> str:
    if config.protocol_version == "v2":
        return f"/v2/models/{name}/infer"
    return f"/v1/models/{name}:predict"


def request_target(
    obj: dict[str, Any] | None, ingress: str | None, path: str
) -> tuple[str, str | None] | None:
    """(URL to POST to, Host header) — through the ingress with the service's host if set."""
    url = status_url(obj)
    if url is None:
        return None
    if ingress:
        return ingress + path, urlparse(url).netloc
    return url + path, None
