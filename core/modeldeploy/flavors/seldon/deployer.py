"""The `seldon` flavor's deployer (entry point `modeldeploy.flavors: seldon`)."""

from __future__ import annotations

from typing import ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings
from modeldeploy.flavors.kubernetes.deployer import KubernetesModelDeployer
from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.secrets import Layout
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer
from modeldeploy.flavors.seldon import resource
from modeldeploy.flavors.seldon.config import SeldonConfig
from modeldeploy.flavors.seldon.server import SeldonModelServer
from modeldeploy.flavors.seldon.settings import SeldonDeployerSettings


class SeldonModelDeployer(KubernetesModelDeployer):
    """Seldon Core 1 `SeldonDeployment`s in one namespace.

    Storage credentials become a Secret of rclone environment variables that the graph
    references with `envSecretRefName`.
    """

    flavor: ClassVar[str] = "seldon"
    config_class: ClassVar[type[ServiceConfig]] = SeldonConfig
    settings_class: ClassVar[type[DeployerSettings]] = SeldonDeployerSettings
    server_class: ClassVar[type[KubernetesModelServer]] = SeldonModelServer
    kind: ClassVar[ResourceKind] = resource.KIND
    secret_layout: ClassVar[Layout] = "seldon"
    # What Seldon's rclone storage initializer fetches (s3://, gs://, az://, http(s), PVC).
    uri_schemes: ClassVar[tuple[str, ...]] = ("s3", "gs", "gcs", "az", "https", "http", "pvc")
