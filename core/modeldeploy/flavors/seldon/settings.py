"""Settings of the `seldon` deployer: the shared Kubernetes settings.

`ingress_base_url` is the ingress gateway (Istio or Ambassador) in front of Seldon, under
which each deployment answers at `<base>/seldon/<namespace>/<name>/...`.
"""

from __future__ import annotations

from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings


class SeldonDeployerSettings(KubernetesDeployerSettings):
    """Cluster access, namespace, ingress and storage credentials for Seldon Core."""
