"""The apps/v1 Deployments a platform makes for a model: is their rollout done, did it fail?

Controllers report readiness from a Deployment's availability, which old pods satisfy
while a rollout is still under way (KServe's Standard mode keeps PredictorReady True, and
Seldon Core 1 computes Available from ready and unavailable replica counts without checking
that the new template was observed). The Deployment itself says when the new pods have
taken over.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.flavors.kubernetes.client import KubeClient


def list_deployments(kube: KubeClient, selector: str) -> list[dict[str, Any]]:
    from kubernetes import client

    apps = client.AppsV1Api(kube.api_client)
    return kube.list_json(apps.list_namespaced_deployment, selector, "Deployments")


def rollout_complete(deployment: dict[str, Any]) -> tuple[bool, str]:
    """(done, why not) for a Deployment, as `kubectl rollout status` decides it
    (k8s.io/kubectl pkg/polymorphichelpers/rollout_status.go, DeploymentStatusViewer)."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    st = deployment.get("status") or {}
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "waiting for the Deployment spec update to be observed"
    wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(st.get("updatedReplicas") or 0)
    if updated < wanted:
        return False, f"{updated} of {wanted} new replicas have been updated"
    total, available = int(st.get("replicas") or 0), int(st.get("availableReplicas") or 0)
    if total > updated:
        return False, f"{total - updated} old replicas are pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas are available"
    return True, ""


def template_rolled_over(deployment: dict[str, Any]) -> tuple[bool, str]:
    """(done, why not): the Deployment controller has observed the current template and no
    replica of an older one is left (availability is the platform's own verdict)."""
    meta = deployment.get("metadata") or {}
    st = deployment.get("status") or {}
    if int(st.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, "waiting for the Deployment spec update to be observed"
    old = int(st.get("replicas") or 0) - int(st.get("updatedReplicas") or 0)
    if old > 0:
        return False, f"{old} old replicas are pending termination"
    return True, ""


def deployment_failure(deployment: dict[str, Any]) -> str | None:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        reason = cond.get("reason")
        failed = (cond.get("type") == "Progressing" and reason == "ProgressDeadlineExceeded") or (
            cond.get("type") == "ReplicaFailure" and cond.get("status") == "True"
        )
        if failed:
            return f"predictor Deployment: {reason}: {cond.get('message') or ''}".rstrip(": ")
    return None
