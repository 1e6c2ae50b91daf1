"""Settings of the `kserve` deployer: the shared Kubernetes settings.

`ingress_base_url`, when set, is where predictions are sent (e.g. the Istio ingress
gateway), with the InferenceService's own host from `status.url` in the `Host` header.
"""

from __future__ import annotations

from pydantic import Field

from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings


class KServeDeployerSettings(KubernetesDeployerSettings):
    """Cluster access, namespace, ingress and storage credentials for KServe."""

    use_cluster_local_address: bool = Field(
        default=False,
        description=(
            "Send predictions to the in-cluster address (status.address.url, "
            "http://<name>.<namespace>.svc.cluster.local) instead of status.url; for "
            "callers running inside the cluster."
        ),
    )
