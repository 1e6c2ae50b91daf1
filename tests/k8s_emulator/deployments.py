"""apps/v1 Deployments as the controllers' children: created and updated like an operator
does, with the status the Deployment controller writes.

Conditions and reasons: kubernetes ``pkg/controller/deployment/util/deployment_util.go``
(Available MinimumReplicasAvailable/MinimumReplicasUnavailable; Progressing
ReplicaSetUpdated/NewReplicaSetAvailable/ProgressDeadlineExceeded; ReplicaFailure
FailedCreate). Pods are the simulators' own; "ready" means phase Running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .store import clone, now_ts

if TYPE_CHECKING:
    from .resources import ResourceType
    from .store import Store


def apply(
    store: Store,
    rt: ResourceType,
    owner: dict[str, Any],
    ns: str,
    name: str,
    meta: dict[str, Any],
    selector: dict[str, str],
    template: dict[str, Any],
    replicas: int,
    *,
    keep_replicas: bool = False,
) -> dict[str, Any]:
    """Create or update the Deployment; a changed template bumps its generation."""
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "progressDeadlineSeconds": 600,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
        "template": template,
    }
    existing = store.get(rt, ns, name)
    if existing is None:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "name": name, "ownerReferences": [owner]},
            "spec": spec,
        }
        out, _ = store.create(rt, ns, body)
        return out
    if keep_replicas:
        spec["replicas"] = existing["spec"].get("replicas", replicas)
    if existing["spec"] == {**existing["spec"], **spec}:
        return existing
    body = clone(existing)
    body["spec"] = {**existing["spec"], **spec}
    body["metadata"].update(meta)
    out, _ = store.update(rt, ns, name, body)
    return out


def write_status(
    store: Store,
    rt: ResourceType,
    ns: str,
    name: str,
    pods: list[dict[str, Any]],
    updated: set[str],
    template_hash: str,
    phase: str,
    fail_create: str | None = None,
) -> dict[str, Any]:
    """The Deployment controller's status for ``phase`` (progressing, ready, failed)."""
    dep = store.require(rt, ns, name)
    ready = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    want = int(dep["spec"].get("replicas", 1))
    rs = f"{name}-{template_hash}"
    old = {c["type"]: c for c in (dep.get("status") or {}).get("conditions") or []}
    ts = now_ts()

    def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        prev = old.get(ctype) or {}
        same = prev.get("status") == status
        return {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": ts,
            "lastTransitionTime": prev.get("lastTransitionTime", ts) if same else ts,
        }

    # maxUnavailable 25 %: available once at least replicas - floor(25 %) pods are ready
    if want == 0 or len(ready) >= max(want - want // 4, 1):
        avail = cond(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
    else:
        avail = cond(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    conds = [avail]
    if fail_create is not None:
        conds.append(cond("ReplicaFailure", "True", "FailedCreate", fail_create))
    progressing = {
        "failed": (
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs}" has timed out progressing.',
        ),
        "ready": (
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs}" has successfully progressed.',
        ),
    }.get(phase, ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs}" is progressing.'))
    conds.append(cond("Progressing", *progressing))
    status: dict[str, Any] = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": len(pods),
        "updatedReplicas": sum(1 for p in pods if p["metadata"]["name"] in updated),
        "readyReplicas": len(ready),
        "availableReplicas": len(ready),
        "unavailableReplicas": max(want - len(ready), 0),
        "conditions": conds,
    }
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}
    body = clone(dep)
    body["status"] = status
    out, _ = store.update(rt, ns, name, body, subresource="status")
    return out
