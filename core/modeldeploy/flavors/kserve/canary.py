"""KServe's own canary in Standard (RawDeployment) mode: `spec.canary[]` (KServe 0.20+).

KServe 0.20 runs each entry of `spec.canary` as its own Deployment and Service
`<isvc>-<predictor name>-predictor` beside the stable predictor's, and its HTTPRoute (or
Ingress) gives each canary that has ready endpoints its `trafficPercent` and the stable
predictor the rest (kserve/kserve#5672, #5912, #5984). Per canary, `status.canaryStatuses[]`
reports `name`, `ready`, `trafficPercent` and `modelStatus`. Promotion points
`spec.predictor.name` at the canary (its Deployment becomes the stable one) and drops the
entry; removing the entry is the rollback, and KServe deletes its Deployment.

A rollout here is: one write that adds one canary entry at 0 % holding the challenger's
predictor (named after its config, so it differs from the stable name) and records the
challenger's config in an annotation; then writes of `spec.canary[0].trafficPercent` alone;
then promotion (the challenger's config written as the predictor, under the canary's name)
or removal. The stable predictor is never rewritten before promotion, so the champion keeps
serving throughout. KServe copies the InferenceService's annotations into both pod
templates, so the two writes that change annotations (start, end) replace the pods of the
Deployments that remain, one rolling update each; traffic writes change no template.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kserve import resource
from modeldeploy.flavors.kubernetes.records import ANNOTATION_CONFIG, PREFIX
from modeldeploy.progressive.queries import pod_selector
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus, VariantStatus

ANNOTATION_CHALLENGER = PREFIX + "challenger-config"
#: kserve/kserve#5672 validation: a canary predictor carries no autoscaling field
AUTOSCALING_FIELDS = ("maxReplicas", "scaleMetric", "scaleMetricType", "scaleTarget", "autoScaling")
#: Kubernetes object names (DNS-1123 label) for the canary's Deployment and Service
MAX_NAME = 63
#: `status.canaryStatuses[].modelStatus.transitionStatus` values that say it will not load
FAILED = resource.FAILED_TRANSITIONS


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def canaries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _spec(obj).get("canary") or [] if isinstance(c, dict)]


def stable_name(obj: dict[str, Any]) -> str:
    return str((_spec(obj).get("predictor") or {}).get("name") or "")


def deployment_name(isvc: str, predictor_name: str) -> str:
    """KServe's `PredictorServiceName`: the Deployment and Service of a named predictor."""
    return f"{isvc}-{predictor_name}-predictor" if predictor_name else f"{isvc}-predictor"


def canary_name(record: str, taken: str) -> str:
    """A predictor name for the challenger, from its config, never the stable one's."""
    digest = hashlib.sha256(record.encode("utf-8")).hexdigest()
    name = f"c{digest[:8]}"
    return name if name != taken else f"c{digest[8:16]}"


def in_rollout(obj: dict[str, Any] | None) -> bool:
    """A challenger was added and neither promoted nor removed yet."""
    return obj is not None and ANNOTATION_CHALLENGER in _annotations(obj) and bool(canaries(obj))


def challenger_record(obj: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_annotations(obj)[ANNOTATION_CHALLENGER])
    data.pop("flavor", None)
    return data


def _storage_uri(predictor: dict[str, Any]) -> str | None:
    model = predictor.get("model") or {}
    return str(model["storageUri"]) if model.get("storageUri") else None


def check_can_split(obj: dict[str, Any], where: str, challenger: dict[str, Any]) -> None:
    """Refuse, before anything is written, a canary KServe would refuse or not split.
    `challenger` is the challenger's `spec.predictor` as `resource.build_spec` writes it."""
    if resource.stop_requested(obj):
        raise InvalidConfigError(f"{where} is stopped; start it before a rollout")
    if canaries(obj):
        why = (
            "a challenger; promote or abort that rollout first"
            if in_rollout(obj)
            else "spec.canary entries modeldeploy did not write; remove them before a rollout"
        )
        raise InvalidConfigError(f"{where} already has {why}")
    ready = resource.conditions(obj.get("status") or {}).get("Ready", {}).get("status")
    if ready != "True":
        raise InvalidConfigError(
            f"{where} is not Ready; KServe routes a canary only beside a serving predictor, "
            "so wait until the server is active, then start the rollout"
        )
    stable = _spec(obj).get("predictor") or {}
    if _storage_uri(challenger) == _storage_uri(stable):
        raise InvalidConfigError(
            f"{where}: the challenger's storageUri is the champion's ({_storage_uri(stable)}); "
            "KServe Standard mode promotes a canary by renaming the predictor, which its "
            "webhook allows only with a model change — roll out a different model_uri or "
            "use strategy in_place"
        )
    name = str((obj.get("metadata") or {}).get("name") or "")
    longest = deployment_name(name, "c" + "0" * 8)
    if len(longest) > MAX_NAME:
        raise InvalidConfigError(
            f"{where}: the canary's Deployment name {longest!r} would exceed {MAX_NAME} "
            "characters; use a shorter server name for a KServe Standard-mode rollout"
        )


def canary_predictor(challenger: dict[str, Any], name: str) -> dict[str, Any]:
    """The canary entry's predictor: the challenger's, named, without autoscaling fields,
    its container named; at least one replica so it is ready before it takes traffic
    (without `minReplicas` KServe derives replicas from the percent: 0 at 0 %)."""
    predictor = {k: v for k, v in challenger.items() if k not in AUTOSCALING_FIELDS}
    # the CRD requires the canary model's container name (KServe's default one)
    predictor["model"] = {**predictor["model"], "name": resource.CONTAINER}
    predictor["minReplicas"] = max(int(predictor.get("minReplicas") or 0), 1)
    predictor["name"] = name
    return predictor


def begin(obj: dict[str, Any], predictor: dict[str, Any], record: str) -> None:
    """Add the canary at 0 % and record the challenger's config."""
    annotations = dict(_annotations(obj))
    annotations[ANNOTATION_CHALLENGER] = record
    obj["metadata"]["annotations"] = annotations
    obj["spec"]["canary"] = [{"trafficPercent": 0, "predictor": predictor}]


def canary_percent(obj: dict[str, Any]) -> int | None:
    listed = canaries(obj)
    return int(listed[0].get("trafficPercent") or 0) if listed else None


def set_percent(obj: dict[str, Any], percent: int) -> None:
    obj["spec"]["canary"][0]["trafficPercent"] = percent


def ours(obj: dict[str, Any]) -> str | None:
    """The canary predictor name of our rollout."""
    listed = canaries(obj)
    return str((listed[0].get("predictor") or {}).get("name") or "") if listed else None


def remove(obj: dict[str, Any]) -> None:
    """Drop the canary (KServe deletes its Deployment) and the challenger's record."""
    obj["spec"].pop("canary", None)
    (obj["metadata"].get("annotations") or {}).pop(ANNOTATION_CHALLENGER, None)


def _canary_status(obj: dict[str, Any], name: str | None) -> dict[str, Any]:
    for entry in (obj.get("status") or {}).get("canaryStatuses") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return {}


def _failure(entry: dict[str, Any]) -> str | None:
    model = entry.get("modelStatus") or {}
    if model.get("transitionStatus") not in FAILED:
        return None
    info = model.get("lastFailureInfo") or {}
    return str(info.get("message") or info.get("reason") or model.get("transitionStatus"))


def status(obj: dict[str, Any], path: str, cluster_local: bool) -> TrafficStatus:
    """The split as KServe reports it: the canary's share once it is ready (the route skips
    a canary without ready endpoints), the stable predictor the rest."""
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    ready = resource.conditions(obj.get("status") or {}).get("Ready", {}).get("status") == "True"

    def url(predictor_name: str) -> str | None:
        """The variant's own Service, reachable from inside the cluster only."""
        if not cluster_local:
            return None
        return f"http://{deployment_name(name, predictor_name)}.{namespace}.svc.cluster.local{path}"

    def selector(predictor_name: str) -> str:
        return pod_selector(namespace, deployment_name(name, predictor_name))

    stable = stable_name(obj)
    if not in_rollout(obj):
        champion = VariantStatus(
            name=CHAMPION, ready=ready, weight=100 if ready else 0, metric_selector=selector(stable)
        )
        return TrafficStatus(variants=[champion])
    canary = ours(obj)
    entry = _canary_status(obj, canary)
    # a status for our latest write reports the percent the spec asks
    current = bool(entry) and entry.get("trafficPercent") == canary_percent(obj)
    challenger_ready = current and entry.get("ready") is True
    weight = int(entry.get("trafficPercent") or 0) if challenger_ready else 0
    before = json.loads(_annotations(obj).get(ANNOTATION_CONFIG) or "{}")
    now = challenger_record(obj)
    champion = VariantStatus(
        name=CHAMPION,
        model_version=before.get("model_version"),
        model_uri=before.get("model_uri"),
        ready=ready,
        weight=100 - weight if ready else 0,
        url=url(stable),
        metric_selector=selector(stable),
    )
    challenger = VariantStatus(
        name=CHALLENGER,
        model_version=now.get("model_version"),
        model_uri=now.get("model_uri"),
        ready=challenger_ready,
        weight=weight,
        last_error=_failure(entry),
        url=url(canary or ""),
        metric_selector=selector(canary or ""),
    )
    return TrafficStatus(variants=[champion, challenger])
