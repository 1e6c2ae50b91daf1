"""KServe's own canary, read and written on the `InferenceService` (Knative mode).

KServe splits traffic with `spec.predictor.canaryTrafficPercent`: the Knative route gives the
latest ready revision that percent and the last revision rolled out to 100 % (tag `prev`)
the rest; without the field the latest ready revision takes everything
(kserve@v0.20.0 `reconcilers/knative/ksvc_reconciler.go`, createKnativeService). The status
reports the route per revision (`components.predictor.traffic`) and which revisions were
rolled out (`latestRolledoutRevision`, `previousRolledoutRevision`;
`pkg/apis/serving/v1beta1/inference_service_status.go`, PropagateStatus).

So a rollout here is: one write that puts the challenger's model into the spec with
`canaryTrafficPercent: 0` (a new revision beside the champion's, which keeps 100 %), then
writes of that one field. Every other field of the object is copied into the revision
template, so traffic writes change nothing else. The champion's config rides along in an
annotation for a rollback, which writes it back as a new revision and moves traffic to it
only once it is ready.

Standard (RawDeployment) mode has no `canaryTrafficPercent` (no raw reconciler reads it);
there KServe 0.20's `spec.canary[]` is driven instead (`canary`), and the server picks the
module from the object's mode.
"""

from __future__ import annotations

import json
from typing import Any

from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kserve import resource
from modeldeploy.flavors.kubernetes.records import ANNOTATION_CONFIG, PREFIX
from modeldeploy.progressive.queries import knative_selector
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus, VariantStatus

CANARY_FIELD = "canaryTrafficPercent"
#: pkg/constants/constants.go EnableRoutingTagAnnotationKey: the latest revision gets the
#: tag `latest` and its own URL (the `prev` tag always has one)
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
ANNOTATION_CHAMPION = PREFIX + "champion-config"
ANNOTATION_CHAMPION_REVISION = PREFIX + "champion-revision"
NO_MIRROR = (
    "KServe cannot mirror requests: its InferenceService routes each request to exactly one "
    "revision (canaryTrafficPercent splits, it never copies); use a canary, linear or "
    "blue_green rollout, or the mlflow or seldon flavor for a shadow rollout"
)
NO_STICKY = (
    "KServe cannot pin a client to a variant by header: canaryTrafficPercent is a random "
    "split; leave sticky_header unset"
)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def canary_percent(obj: dict[str, Any] | None) -> int | None:
    value = (((obj or {}).get("spec") or {}).get("predictor") or {}).get(CANARY_FIELD)
    return None if value is None else int(value)


def in_rollout(obj: dict[str, Any] | None) -> bool:
    """A challenger was added and neither promoted nor removed yet."""
    return obj is not None and (
        ANNOTATION_CHAMPION in _annotations(obj) and canary_percent(obj) is not None
    )


def check_can_split(obj: dict[str, Any], where: str) -> None:
    """Refuse, before anything is written, a rollout KServe would not split."""
    if resource.stop_requested(obj):
        raise InvalidConfigError(f"{where} is stopped; start it before a rollout")
    if in_rollout(obj):
        raise InvalidConfigError(
            f"{where} already has a challenger; promote or abort that rollout first"
        )
    rolled_out = resource.predictor_status(obj).get("latestRolledoutRevision")
    if not rolled_out or rolled_out != resource.predictor_status(obj).get("latestReadyRevision"):
        raise InvalidConfigError(
            f"{where} has no revision serving all traffic yet (latestRolledoutRevision "
            f"{rolled_out or 'unset'}); KServe splits traffic only against a rolled-out "
            "revision, so wait until the server is active, then start the rollout"
        )


def begin(obj: dict[str, Any], champion_record: str, champion_revision: str) -> None:
    """Mark `obj` (already holding the challenger's spec) as a canary at 0 %."""
    annotations = dict(_annotations(obj))
    annotations[ANNOTATION_CHAMPION] = champion_record
    annotations[ANNOTATION_CHAMPION_REVISION] = champion_revision
    annotations[TAG_ROUTING_ANNOTATION] = "true"
    obj["metadata"]["annotations"] = annotations
    obj["spec"]["predictor"][CANARY_FIELD] = 0


def set_percent(obj: dict[str, Any], percent: int | None) -> None:
    predictor = obj["spec"]["predictor"]
    if percent is None:
        predictor.pop(CANARY_FIELD, None)
    else:
        predictor[CANARY_FIELD] = percent


def champion_record(obj: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_annotations(obj)[ANNOTATION_CHAMPION])
    data.pop("flavor", None)
    return data


def current_record(obj: dict[str, Any]) -> str:
    return _annotations(obj)[ANNOTATION_CONFIG]


def _shares(predictor: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for target in predictor.get("traffic") or []:
        if isinstance(target, dict) and target.get("revisionName"):
            rev = str(target["revisionName"])
            out[rev] = out.get(rev, 0) + int(target.get("percent") or 0)
    return out


def _tag_url(predictor: dict[str, Any], revision: str | None, path: str) -> str | None:
    for target in predictor.get("traffic") or []:
        if target.get("revisionName") == revision and target.get("url"):
            return str(target["url"]).rstrip("/") + path
    return None


def status(obj: dict[str, Any], path: str, public_url: str | None) -> TrafficStatus:
    """The route as KServe reports it, as champion and challenger."""
    predictor = resource.predictor_status(obj)
    shares = _shares(predictor)
    ready_revision = predictor.get("latestReadyRevision")
    if not in_rollout(obj):
        serving = max(shares, key=lambda rev: shares[rev]) if shares else ready_revision
        ready = (
            bool(serving)
            and resource.conditions(obj.get("status") or {}).get("Ready", {}).get("status")
            == "True"
        )
        served = json.loads(_annotations(obj).get(ANNOTATION_CONFIG) or "{}")
        champion = VariantStatus(
            name=CHAMPION,
            model_version=served.get("model_version"),
            model_uri=served.get("model_uri"),
            ready=ready,
            weight=100 if ready else 0,
            url=public_url,
        )
        return TrafficStatus(variants=[champion])
    annotations = _annotations(obj)
    champion_rev = annotations.get(ANNOTATION_CHAMPION_REVISION)
    challenger_rev = challenger_revision(obj)
    failure = None
    if challenger_rev and ready_revision != challenger_rev:
        failure = resource.model_failure(obj.get("status") or {}) or _revision_failure(obj)
    before, now = champion_record(obj), json.loads(current_record(obj))
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")

    def selector(revision: str | None) -> str | None:
        """The revision's series among Knative's queue-proxy metrics (`queries.KNATIVE`)."""
        return knative_selector(namespace, revision) if revision else None

    champion = VariantStatus(
        name=CHAMPION,
        metric_selector=selector(champion_rev),
        model_version=before.get("model_version"),
        model_uri=before.get("model_uri"),
        ready=champion_rev in shares,
        weight=shares.get(champion_rev or "", 0),
        url=_tag_url(predictor, champion_rev, path),
    )
    challenger = VariantStatus(
        name=CHALLENGER,
        metric_selector=selector(challenger_rev),
        model_version=now.get("model_version"),
        model_uri=now.get("model_uri"),
        ready=challenger_rev is not None and ready_revision == challenger_rev,
        weight=shares.get(challenger_rev or "", 0),
        last_error=failure,
        url=_tag_url(predictor, challenger_rev, path),
    )
    return TrafficStatus(variants=[champion, challenger])


def challenger_revision(obj: dict[str, Any]) -> str | None:
    """The first revision created after `add_challenger`'s write (see `resource.mark`);
    None while KServe has not made it yet."""
    created = resource.predictor_status(obj).get("latestCreatedRevision")
    marked = _annotations(obj).get(resource.MARK_REVISION)
    return str(created) if created and created != marked else None


def _revision_failure(obj: dict[str, Any]) -> str | None:
    status = obj.get("status") or {}
    for ctype in resource.READY_CONDITIONS:
        cond = resource.conditions(status).get(ctype) or {}
        if cond.get("status") == "False" and cond.get("reason") in resource.TERMINAL_REASONS:
            return resource.failure_reason(status)
    return None


def serving_revision(obj: dict[str, Any]) -> str | None:
    """During a rollout: the ready revision with the largest share (None: none routed)."""
    shares = {k: v for k, v in _shares(resource.predictor_status(obj)).items() if v > 0}
    return max(shares, key=lambda rev: shares[rev]) if shares else None
