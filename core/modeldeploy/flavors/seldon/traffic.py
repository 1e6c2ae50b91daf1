"""Champion and challenger as two predictors of one `SeldonDeployment` (Seldon Core 1.17).

Seldon Core 1 splits traffic across `spec.predictors[].traffic` and mirrors every request
(or `traffic` percent of them) to a predictor marked `shadow: true`, through the Istio
VirtualService its operator writes (seldon-core@v1.17.1 operator/controllers/
seldondeployment_controller.go:303-411). Its validating webhook
(operator/apis/machinelearning.seldon.io/v1/seldondeployment_webhook.go:142-166, 235-245,
`checkTraffic`, `validateShadow`) allows one shadow at most, never a shadow alone, and wants
the non-shadow predictors' traffic to sum to 100; every spec built here passes those rules.

The operator applies the routes only once every predictor's Deployments are available
(`createDeployments`, then `completeServiceCreation`), and deletes the Deployments of a
removed predictor then too, so the champion keeps its traffic while a challenger loads,
and fails to load. This module is pure: specs in, specs and statuses out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.flavors.kubernetes.deployments import rollout_complete
from modeldeploy.flavors.kubernetes.naming import MAX_LABEL
from modeldeploy.flavors.kubernetes.records import PREFIX
from modeldeploy.progressive.queries import seldon_selector
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus, VariantStatus

#: which predictor is the challenger, and its config (JSON): any process can carry on
ANNOTATION_CHALLENGER = PREFIX + "challenger"
#: why the analysis cannot send its probe to one predictor (Capability.VARIANT_URLS)
NO_VARIANT_URLS = (
    "a Seldon Core 1 predictor has no URL of its own here: every request goes through the "
    "SeldonDeployment's one ingress route, which picks the predictor by its traffic weight, "
    "so probe rows cannot be sent to the champion and the challenger apart"
)
#: the operator's executor container (seldondeployment_engine.go EngineContainerName)
ENGINE_CONTAINER = "seldon-container-engine"
#: the status condition on the operator's Istio VirtualServices, and its reason when the
#: operator runs without Istio (seldon_deployment_status.go VirtualServicesReady,
#: VirtualServiceNotDefined)
ISTIO_CONDITION = "istioVirtualServicesReady"
NO_VIRTUAL_SERVICES = "No VirtualServices defined"
#: where the operator's VirtualService lives (createIstioResources, networking/v1alpha3)
VS_GROUP, VS_VERSION, VS_PLURAL = "networking.istio.io", "v1alpha3", "virtualservices"


def predictors(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in (obj.get("spec") or {}).get("predictors") or [] if isinstance(p, dict)]


def challenger_record(obj: dict[str, Any]) -> dict[str, Any] | None:
    """{"predictor": name, "config": record} while a challenger is in the spec."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_CHALLENGER)
    if not raw:
        return None
    record = json.loads(raw)
    names = {p.get("name") for p in predictors(obj)}
    return record if isinstance(record, dict) and record.get("predictor") in names else None


def champion_name(obj: dict[str, Any]) -> str:
    record = challenger_record(obj)
    others = [p["name"] for p in predictors(obj) if not record or p["name"] != record["predictor"]]
    if not others:
        raise ModelDeployError("the SeldonDeployment has no champion predictor")
    return str(others[0])


def split_predictors(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(champion, challenger or None) predictors of the spec."""
    record = challenger_record(obj)
    champion = next(p for p in predictors(obj) if p["name"] == champion_name(obj))
    if record is None:
        return champion, None
    return champion, next(p for p in predictors(obj) if p["name"] == record["predictor"])


def foreign(obj: dict[str, Any], *ours: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Predictors someone else added: kept as they are (the webhook judges the whole)."""
    names = {p["name"] for p in ours if p is not None}
    return [p for p in predictors(obj) if p.get("name") not in names]


def add_challenger(
    obj: dict[str, Any], challenger: dict[str, Any], config_record: dict[str, Any]
) -> None:
    """Champion at 100, the challenger beside it at 0 (a valid split the webhook accepts)."""
    if challenger_record(obj) is not None:
        raise ModelDeployError(
            "a challenger predictor is already running beside the champion; promote or "
            "remove it before adding another"
        )
    champion, _ = split_predictors(obj)
    others = foreign(obj, champion)
    champion = {**champion, "traffic": 100}
    champion.pop("shadow", None)
    obj["spec"]["predictors"] = [champion, {**challenger, "traffic": 0}, *others]
    annotations = obj["metadata"].setdefault("annotations", {})
    annotations[ANNOTATION_CHALLENGER] = json.dumps(
        {"predictor": challenger["name"], "config": config_record}, sort_keys=True
    )


def set_traffic(obj: dict[str, Any], challenger_percent: int, mirror_percent: int) -> None:
    """Route `challenger_percent` to the challenger, or mirror `mirror_percent` to it as a
    shadow. A shadow's traffic is its mirror percentage; 0 would mirror everything, so
    `mirror_percent=0` makes it a routed predictor at 0 again."""
    champion, challenger = split_predictors(obj)
    if challenger is None:
        raise ModelDeployError("no challenger predictor to route traffic to; add one first")
    others = foreign(obj, champion, challenger)
    if not 0 <= challenger_percent <= 100 or not 0 <= mirror_percent <= 100:
        raise InvalidConfigError(
            f"traffic percents must be 0..100, got challenger {challenger_percent} % and "
            f"mirror {mirror_percent} %"
        )
    if challenger_percent and mirror_percent:
        raise InvalidConfigError(
            f"Seldon Core 1 cannot both route {challenger_percent} % to the challenger and "
            "mirror to it: a predictor is either routed or a shadow; mirror with 0 % routed"
        )
    champion = {**champion, "traffic": 100 - challenger_percent}
    challenger = {**challenger, "traffic": mirror_percent or challenger_percent}
    if mirror_percent:
        challenger["shadow"] = True
        champion["traffic"] = 100
    else:
        challenger.pop("shadow", None)
    obj["spec"]["predictors"] = [champion, challenger, *others]


def remove(obj: dict[str, Any]) -> None:
    """The champion alone again; the operator deletes the challenger's Deployments."""
    champion, challenger = split_predictors(obj)
    others = foreign(obj, champion, challenger)
    lone = {k: v for k, v in champion.items() if k not in ("traffic", "shadow")}
    obj["spec"]["predictors"] = [lone, *others]
    obj["metadata"].get("annotations", {}).pop(ANNOTATION_CHALLENGER, None)


def operator_name(name: str) -> str:
    """A name the operator derives (a Deployment, a predictor's `seldon-app` key): past the
    63 characters of a label it is `seldon-` and the md5 of the long name
    (machinelearning.seldon.io/v1 seldondeployment_types.go GetDeploymentName,
    getPredictorKeyAutoGenerated)."""
    if len(name) <= MAX_LABEL:
        return name
    return "seldon-" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()


def predictor_key(sdep: str, predictor: dict[str, Any]) -> str:
    """The predictor's `seldon-app` label on its pods."""
    return operator_name(f"{sdep}-{predictor['name']}")


def deployment_names(sdep: str, predictor: dict[str, Any]) -> list[str]:
    """The operator's Deployments of a predictor: `<sdep>-<predictor>-<i>-<containers>`,
    hashed when longer than a label (`operator_name`)."""
    comps = predictor.get("componentSpecs") or []
    graph_name = str((predictor.get("graph") or {}).get("name") or "model")
    if not comps:
        return [operator_name(f"{sdep}-{predictor['name']}-0-{graph_name}")]
    out = []
    for i, comp in enumerate(comps):
        names = [str(c.get("name")) for c in (comp.get("spec") or {}).get("containers") or []]
        long = f"{sdep}-{predictor['name']}-{i}-{'-'.join(names or [graph_name])}"
        out.append(operator_name(long))
    return out


def predictor_available(obj: dict[str, Any], predictor: dict[str, Any]) -> bool:
    """Every Deployment of the predictor is in `status.deploymentStatus` with available
    replicas: the operator writes an entry only for a Deployment it found unchanged."""
    sdep = obj["metadata"]["name"]
    deployed = ((obj.get("status") or {}).get("deploymentStatus")) or {}
    return all(
        int((deployed.get(name) or {}).get("availableReplicas") or 0) > 0
        for name in deployment_names(sdep, predictor)
    )


def istio_routes(obj: dict[str, Any]) -> bool:
    """Does the operator route this SeldonDeployment through an Istio VirtualService? It
    says so in the `istioVirtualServicesReady` condition, whose reason is
    `No VirtualServices defined` when Istio is off (seldon-core@v1.17.1 operator/apis/
    machinelearning.seldon.io/v1/seldon_deployment_status.go:56,72-74; set at the end of
    `createIstioServices`). No such condition (Ambassador-only or an older operator): no."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ISTIO_CONDITION:
            return cond.get("reason") != NO_VIRTUAL_SERVICES
    return False


def virtual_service_name(obj: dict[str, Any]) -> str:
    """The operator's VirtualService is named after the SeldonDeployment, hashed past a
    label's length (`GetSeldonDeploymentName`, used as `seldonId` in createIstioResources)."""
    return operator_name(str(obj["metadata"]["name"]))


def routed_split(
    vs: dict[str, Any], champion: dict[str, Any], challenger: dict[str, Any] | None
) -> tuple[dict[str, int], int]:
    """(weights, mirror percent) as the VirtualService routes the REST route: a destination
    per routed predictor (subset = predictor name, weight = traffic), the shadow as `mirror`
    with `mirrorPercentage` (absent: every request). Istio sends everything to a lone
    destination whatever its weight."""
    http = next(iter((vs.get("spec") or {}).get("http") or []), None) or {}
    weights_by_subset = {
        str((d.get("destination") or {}).get("subset")): int(d.get("weight") or 0)
        for d in http.get("route") or []
        if isinstance(d, dict)
    }
    if len(weights_by_subset) == 1:
        weights_by_subset = dict.fromkeys(weights_by_subset, 100)
    weights = {
        CHAMPION: weights_by_subset.get(str(champion["name"]), 0),
        CHALLENGER: 0 if challenger is None else weights_by_subset.get(challenger["name"], 0),
    }
    mirror = 0
    target = (http.get("mirror") or {}).get("subset")
    if challenger is not None and target == challenger["name"]:
        percent = (http.get("mirrorPercentage") or {}).get("value")
        mirror = 100 if percent is None else round(float(percent))
    return weights, mirror


def status(
    obj: dict[str, Any],
    versions: Mapping[str, tuple[str | None, str | None]],
    ready: dict[str, bool],
    errors: dict[str, str | None],
    vs: dict[str, Any] | None = None,
) -> TrafficStatus:
    """The split as the operator applied it: the VirtualService's routes when it writes one
    (`vs`), which is what the ingress follows. Otherwise from the spec: routes are written
    only when every predictor is available (the SeldonDeployment is `Available`); until
    then the previous routes hold, which for our writes means the champion answers
    everything."""
    champion, challenger = split_predictors(obj)
    applied = str((obj.get("status") or {}).get("state") or "") == "Available" and all(
        ready.values()
    )
    variants: list[tuple[str, dict[str, Any]]] = [(CHAMPION, champion)]
    if challenger is not None:
        variants.append((CHALLENGER, challenger))
    weights = {CHAMPION: 100, CHALLENGER: 0}
    mirror = 0
    if vs is not None:
        weights, mirror = routed_split(vs, champion, challenger)
    elif applied and challenger is not None:
        if challenger.get("shadow"):
            mirror = int(challenger.get("traffic") or 0) or 100
        else:
            weights = {
                CHAMPION: int(champion.get("traffic") or 0),
                CHALLENGER: int(challenger.get("traffic") or 0),
            }
    return TrafficStatus(
        variants=[
            VariantStatus(
                name=variant,
                model_version=versions[variant][0],
                model_uri=versions[variant][1],
                ready=ready[variant],
                weight=weights[variant],
                last_error=errors.get(variant),
                # the executor labels its request metrics with the predictor's name; a
                # shadow counts its mirrored copies under its own
                metric_selector=seldon_selector(obj["metadata"]["name"], predictor["name"]),
            )
            for variant, predictor in variants
        ],
        mirror_to=CHALLENGER if mirror else None,
        mirror_percent=mirror,
    )


def deployments_serve(obj: dict[str, Any], found: list[dict[str, Any]]) -> bool:
    """Do the operator's Deployments already run exactly this spec, rolled out and available?

    A write that needs no Deployment change (a spec restored to what runs, a traffic change)
    leaves Seldon's status as it was, so no status change ever marks it as seen; the
    Deployments then are the evidence: one per predictor component and no other, each with
    its predictor's replicas, model URIs and images, rolled out.
    """
    sdep = obj["metadata"]["name"]
    expected = {
        name: predictor
        for predictor in predictors(obj)
        for name in deployment_names(sdep, predictor)
    }
    by_name = {str((d.get("metadata") or {}).get("name")): d for d in found}
    if set(by_name) != set(expected):
        return False
    for name, predictor in expected.items():
        deployment = by_name[name]
        if not rollout_complete(deployment)[0]:
            return False
        spec = deployment.get("spec") or {}
        if int(spec.get("replicas") or 0) != int(predictor.get("replicas", 1)):
            return False
        pod = (spec.get("template") or {}).get("spec") or {}
        args = [a for c in pod.get("initContainers") or [] for a in c.get("args") or []]
        uris = [
            str(n["modelUri"]) for n in _nodes(predictor.get("graph") or {}) if n.get("modelUri")
        ]
        if any(uri not in args for uri in uris):
            return False
        if not engine_runs(deployment, predictor):
            return False
        images = {c.get("name"): c.get("image") for c in pod.get("containers") or []}
        for comp in predictor.get("componentSpecs") or []:
            for c in (comp.get("spec") or {}).get("containers") or []:
                if c.get("image") and images.get(c.get("name")) != c["image"]:
                    return False
    return True


def engine_runs(deployment: dict[str, Any], predictor: dict[str, Any]) -> bool:
    """Does the Deployment's executor run this predictor as routed or shadow? The operator
    hands the executor its predictor as base64 JSON in `ENGINE_PREDICTOR`, with traffic and
    replicas zeroed so a traffic change rolls nothing (seldondeployment_engine.go
    createEngineContainer), but the `shadow` flag and the graph's model URIs are there: a
    Deployment not rewritten yet for our write still carries the previous ones. Without an
    executor (no-engine predictors) there is nothing to compare."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    encoded = next(
        (
            e.get("value")
            for c in pod.get("containers") or []
            if c.get("name") == ENGINE_CONTAINER
            for e in c.get("env") or []
            if e.get("name") == "ENGINE_PREDICTOR"
        ),
        None,
    )
    if not encoded:
        return True
    try:
        running = json.loads(base64.b64decode(encoded))
    except ValueError:
        return True
    if not isinstance(running, dict):
        return True
    if bool(running.get("shadow")) != bool(predictor.get("shadow")):
        return False
    ran = sorted(str(n.get("modelUri")) for n in _nodes(running.get("graph") or {}))
    want = sorted(str(n.get("modelUri")) for n in _nodes(predictor.get("graph") or {}))
    return ran == want and _containers_run(running, predictor)


def _containers_run(running: dict[str, Any], predictor: dict[str, Any]) -> bool:
    """Does every container field of the predictor's `componentSpecs` (resources, image,
    env: what a write may change besides the model) hold in the executor's copy? Fields the
    operator's defaulting added to that copy are not ours to compare."""
    ran = running.get("componentSpecs") or []
    for i, comp in enumerate(predictor.get("componentSpecs") or []):
        had = {c.get("name"): c for c in _containers(ran[i] if i < len(ran) else None)}
        for wanted in _containers(comp):
            found = had.get(wanted.get("name"))
            if found is None or any(found.get(k) != v for k, v in wanted.items()):
                return False
    return True


def _containers(comp: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((comp or {}).get("spec") or {}).get("containers") or [])


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("children") or []:
        if isinstance(child, dict):
            out.extend(_nodes(child))
    return out
