"""Settings of the `seldon2` deployer: the shared Kubernetes settings plus the mesh address.

Seldon Core 2 answers every model through one service, `seldon-mesh`, in the namespace of
its runtime; the model is chosen by the `Seldon-Model` header, not by the URL's host.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings


class Seldon2DeployerSettings(KubernetesDeployerSettings):
    """Cluster access, namespace, mesh address and storage credentials for Seldon Core 2."""

    mesh_url: str | None = Field(
        default=None,
        title="Seldon mesh URL",
        description=(
            "Base URL of the seldon-mesh service (its LoadBalancer or a port-forward, e.g. "
            "http://127.0.0.1:9000); default: ingress_base_url, else the in-cluster address "
            "http://seldon-mesh.<namespace>.svc.cluster.local."
        ),
    )

    @field_validator("mesh_url")
    @classmethod
    def _check_mesh(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"mesh_url {value!r} must start with http:// or https://")
        return value
