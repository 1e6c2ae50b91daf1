"""The `seldon` flavor's deployer (entry point `modeldeploy.flavors: seldon`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kubernetes.deployer import KubernetesModelDeployer
from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.secrets import SecretLayout
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer
from modeldeploy.flavors.seldon import resource, storage
from modeldeploy.flavors.seldon.config import SeldonConfig
from modeldeploy.flavors.seldon.server import SeldonModelServer
from modeldeploy.flavors.seldon.settings import SeldonDeployerSettings
from modeldeploy.flavors.seldon.traffic import NO_VARIANT_URLS
from modeldeploy.progressive.queries import SELDON_CORE_1
from modeldeploy.traffic import Capability


class SeldonModelDeployer(KubernetesModelDeployer):
    """Seldon Core 1 `SeldonDeployment`s in one namespace.

    Storage credentials become a Secret of rclone environment variables that the graph
    references with `envSecretRefName`. Progressive rollouts run the challenger as a second
    predictor (traffic split) or a shadow predictor (mirror), which Seldon routes through
    Istio; blue/green is a split at 0 % then 100 %.
    """

    flavor: ClassVar[str] = "seldon"
    config_class: ClassVar[type[ServiceConfig]] = SeldonConfig
    settings_class: ClassVar[type[DeployerSettings]] = SeldonDeployerSettings
    server_class: ClassVar[type[KubernetesModelServer]] = SeldonModelServer
    kind: ClassVar[ResourceKind] = resource.KIND
    secret_layout: ClassVar[SecretLayout] = storage.LAYOUT
    uri_schemes: ClassVar[tuple[str, ...]] = storage.URI_SCHEMES
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TRAFFIC_SPLIT, Capability.MIRROR, Capability.SIDE_BY_SIDE}
    )
    why_not: ClassVar[Mapping[Capability, str]] = {Capability.VARIANT_URLS: NO_VARIANT_URLS}
    #: the executor's request histogram per predictor (analysis through Prometheus)
    metric_queries = SELDON_CORE_1

    def validate_deploy(self, config: ServiceConfig) -> None:
        scheme = config.model_uri.split("://", 1)[0].lower() if "://" in config.model_uri else ""
        if scheme in ("http", "https"):
            raise InvalidConfigError(
                f"model_uri {config.model_uri!r}: Seldon Core 1's rclone storage initializer "
                f"reads '{scheme}://' as an rclone remote named {scheme!r}, which is not "
                "configured, so the model cannot be fetched. Copy the model to s3://, gs:// "
                "or az:// storage, or serve it from a custom container"
            )
        super().validate_deploy(config)
