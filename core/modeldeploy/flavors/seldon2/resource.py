"""The `Model` and `Experiment` objects of Seldon Core 2 (mlops.seldon.io/v1alpha1, 2.6.0).

Model status is knative-style conditions only: `ModelReady` (and `Ready`, its living
condition set) written by the operator from the scheduler's model events, with the
scheduler's state (`ModelProgressing`, `ModelAvailable`, `ModelFailed`, `ScheduleFailed`...)
in `message` and its explanation in `reason` (operator/scheduler/model.go,
SubscribeModelEvents). No `observedGeneration` is written, so "ready for our write" comes
from the shared freshness history, as for Seldon Core 1.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.server import Observation
from modeldeploy.flavors.seldon2.config import Seldon2Config
from modeldeploy.status import ServiceState

KIND = ResourceKind(group="mlops.seldon.io", version="v1alpha1", plural="models", kind="Model")
EXPERIMENT_KIND = ResourceKind(
    group="mlops.seldon.io", version="v1alpha1", plural="experiments", kind="Experiment"
)
#: scheduler states after which the model will not become available by waiting
FAILED_STATES = frozenset({"ModelFailed", "ScheduleFailed"})
#: the header the mesh routes on (docs/source/contents/inference/index.md)
MODEL_HEADER = "Seldon-Model"
#: why the analysis cannot send its probe to one Model (Capability.VARIANT_URLS)
NO_VARIANT_URLS = (
    "a Seldon Core 2 Model has no URL of its own: every Model answers on the mesh's one "
    f"inference URL and is picked by the {MODEL_HEADER} header (the Experiment's name splits "
    "by weight), so probe rows cannot be sent to the champion and the challenger apart"
)
#: Servers a Seldon Core 2 runtime installs; their pods carry `seldon-server-name=<server>`
DEFAULT_SERVER = "mlserver"
TRITON_CAPABILITIES = frozenset({"triton", "onnx", "pytorch", "tensorflow", "tensorrt"})


def build_spec(config: Seldon2Config, secret: str | None, uri: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"storageUri": uri or config.model_uri, "replicas": config.replicas}
    if config.requirements:
        spec["requirements"] = list(config.requirements)
    capability = config.model_type_capability()
    if capability:
        spec["modelType"] = capability
    if secret:
        spec["secretName"] = secret
    if config.server:
        spec["server"] = config.server
    memory = config.memory or (
        config.resources.requests.get("memory") if config.resources else None
    )
    if memory:
        spec["memory"] = memory
    return spec


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return None


def is_true(obj: dict[str, Any] | None, ctype: str) -> bool:
    cond = condition(obj, ctype)
    return cond is not None and cond.get("status") == "True"


def model_failure(obj: dict[str, Any] | None) -> str | None:
    """Seldon's own words when the scheduler gave up on the model, else None."""
    cond = condition(obj, "ModelReady")
    if cond is None or cond.get("status") != "False":
        return None
    state = str(cond.get("message") or "")
    if state not in FAILED_STATES:
        return None
    why = str(cond.get("reason") or "").strip()
    return f"{state}: {why}" if why else state


def observe(obj: dict[str, Any], stopped: bool) -> Observation:
    """`ModelReady` as a ServiceState (the status is known to be current)."""
    if stopped:
        return Observation(ServiceState.INACTIVE)
    if is_true(obj, "ModelReady"):
        return Observation(ServiceState.ACTIVE)
    failure = model_failure(obj)
    if failure:
        return Observation(ServiceState.ERROR, failure)
    return Observation(ServiceState.PENDING_STARTUP)


def hosting_server(config: Seldon2Config) -> str:
    """The Server whose pods hold the model's logs: the pinned one, else the default Server
    for its kind of model (Seldon reports no placement on the Model)."""
    if config.server:
        return config.server
    wanted = {*config.requirements, config.model_type_capability() or ""}
    return "triton" if wanted & TRITON_CAPABILITIES else DEFAULT_SERVER


def experiment_spec(
    champion: str, challenger: str, challenger_percent: int, mirror_percent: int
) -> dict[str, Any]:
    """An Experiment whose default is the champion, so `Seldon-Model: <champion>` requests
    follow it: candidates with the split (weights are relative; ours sum to 100) and the
    challenger as the mirror for shadow traffic."""
    spec: dict[str, Any] = {
        "default": champion,
        "resourceType": "model",
        "candidates": [{"name": champion, "weight": 100 - challenger_percent}],
    }
    if challenger_percent:
        spec["candidates"].append({"name": challenger, "weight": challenger_percent})
    if mirror_percent:
        spec["mirror"] = {"name": challenger, "percent": mirror_percent}
    return spec


def applied_split(experiment: dict[str, Any] | None, challenger: str) -> tuple[int, int]:
    """(challenger percent, mirror percent) the mesh applies by an Experiment whose status
    is known to describe its current spec, else (0, 0)."""
    if experiment is None or (experiment.get("metadata") or {}).get("deletionTimestamp"):
        return 0, 0
    if not all(is_true(experiment, c) for c in ("ExperimentReady", "CandidatesReady")):
        return 0, 0
    spec = experiment.get("spec") or {}
    candidates = spec.get("candidates") or []
    total = sum(int(c.get("weight") or 0) for c in candidates)
    share = sum(int(c.get("weight") or 0) for c in candidates if c.get("name") == challenger)
    percent = round(100 * share / total) if total else 0
    mirror = spec.get("mirror") or {}
    mirrored = 0
    if mirror.get("name") == challenger and is_true(experiment, "MirrorReady"):
        mirrored = int(mirror.get("percent") or 0)
    return percent, mirrored
