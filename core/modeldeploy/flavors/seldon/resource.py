"""The `SeldonDeployment` object: spec from a config, state from its status, URLs from its name.

Field names follow the machinelearning.seldon.io/v1 CRD of Seldon Core 1.17 (the last
Apache-2.0 release): `spec.predictors[].graph` with `implementation`, `modelUri`,
`envSecretRefName`; `componentSpecs[].spec.containers[]` for custom containers and
resources; `status.state` is Creating, Available or Failed with `status.description`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.server import Observation
from modeldeploy.flavors.seldon.config import SeldonConfig
from modeldeploy.status import ServiceState

KIND = ResourceKind(
    group="machinelearning.seldon.io",
    version="v1",
    plural="seldondeployments",
    kind="SeldonDeployment",
)
PREDICTOR = "default"
# Seldon Core 1 labels every pod of a deployment with its SeldonDeployment's name.
POD_LABEL = "seldon-deployment-id"


def build_spec(config: SeldonConfig, name: str, secret: str | None) -> dict[str, Any]:
    graph: dict[str, Any] = {
        "name": name,
        "type": "MODEL",
        "modelUri": config.model_uri,
        "children": [],
    }
    implementation = config.resolved_implementation()
    if implementation:
        graph["implementation"] = implementation
    if secret:
        graph["envSecretRefName"] = secret
    if config.service_account_name:
        graph["serviceAccountName"] = config.service_account_name

    predictor: dict[str, Any] = {"name": PREDICTOR, "replicas": config.replicas, "graph": graph}
    container: dict[str, Any] = {"name": name}
    if config.container is not None:
        custom = config.container
        container["image"] = custom.image
        if custom.command:
            container["command"] = list(custom.command)
        if custom.args:
            container["args"] = list(custom.args)
        if custom.env:
            container["env"] = [{"name": k, "value": v} for k, v in sorted(custom.env.items())]
    if config.resources is not None and config.resources.to_k8s():
        container["resources"] = config.resources.to_k8s()
    if len(container) > 1 or config.service_account_name:
        pod_spec: dict[str, Any] = {"containers": [container]}
        if config.service_account_name:
            pod_spec["serviceAccountName"] = config.service_account_name
        predictor["componentSpecs"] = [{"spec": pod_spec}]
    return {"name": name, "protocol": config.resolved_protocol(), "predictors": [predictor]}


def set_replicas(obj: dict[str, Any], replicas: int) -> None:
    for predictor in (obj.get("spec") or {}).get("predictors") or []:
        predictor["replicas"] = replicas


def observe(obj: dict[str, Any], stopped: bool) -> Observation:
    """Seldon's `status.state` as a ServiceState (the status is known to be current)."""
    status = obj.get("status") or {}
    if stopped:
        return Observation(ServiceState.INACTIVE)
    state = str(status.get("state") or "")
    if state == "Available":
        return Observation(ServiceState.ACTIVE)
    if state == "Failed":
        return Observation(ServiceState.ERROR, failure_reason(status))
    return Observation(ServiceState.PENDING_STARTUP)


def failure_reason(status: dict[str, Any]) -> str:
    """Seldon's own words: `status.description`, else failing deployments or conditions."""
    parts: list[str] = []
    if status.get("description"):
        parts.append(str(status["description"]))
    for name, dep in sorted((status.get("deploymentStatus") or {}).items()):
        if isinstance(dep, dict) and dep.get("description"):
            parts.append(f"{name}: {dep['description']}")
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("status") == "False" and cond.get("message"):
            parts.append(f"{cond.get('type')}: {cond['message']}")
    return "; ".join(dict.fromkeys(parts)) or "Seldon reported the deployment as Failed"


def service_root(
    obj: dict[str, Any] | None, ingress: str | None, namespace: str, name: str
) -> str | None:
    """Where the deployment's REST API lives: the ingress path, else the in-cluster address."""
    if ingress:
        return f"{ingress}/seldon/{namespace}/{name}"
    address = ((obj or {}).get("status") or {}).get("address") or {}
    url = address.get("url") if isinstance(address, dict) else None
    if not url:
        return None
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def prediction_path(config: SeldonConfig, name: str) -> str:
    if config.resolved_protocol() == "v2":
        return f"/v2/models/{name}/infer"
    return "/api/v1.0/predictions"
