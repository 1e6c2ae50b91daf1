"""The `seldon2` flavor's deployer (entry point `modeldeploy.flavors: seldon2`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kubernetes.deployer import KubernetesModelDeployer
from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.secrets import SecretLayout
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer
from modeldeploy.flavors.seldon2 import resource, storage
from modeldeploy.flavors.seldon2.config import Seldon2Config
from modeldeploy.flavors.seldon2.server import LABEL_ROLE, Seldon2ModelServer
from modeldeploy.flavors.seldon2.settings import Seldon2DeployerSettings
from modeldeploy.progressive.queries import SELDON_CORE_2
from modeldeploy.traffic import Capability


class Seldon2ModelDeployer(KubernetesModelDeployer):
    """Seldon Core 2 `Model`s in one namespace, scheduled by Seldon onto its Servers.

    Storage credentials become a Secret holding one rclone remote, named by the Model's
    `secretName`; canary, linear, blue/green and shadow rollouts use an `Experiment`.
    """

    flavor: ClassVar[str] = "seldon2"
    config_class: ClassVar[type[ServiceConfig]] = Seldon2Config
    settings_class: ClassVar[type[DeployerSettings]] = Seldon2DeployerSettings
    server_class: ClassVar[type[KubernetesModelServer]] = Seldon2ModelServer
    kind: ClassVar[ResourceKind] = resource.KIND
    secret_layout: ClassVar[SecretLayout] = storage.LAYOUT
    uri_schemes: ClassVar[tuple[str, ...]] = storage.URI_SCHEMES
    metric_queries = SELDON_CORE_2
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TRAFFIC_SPLIT, Capability.MIRROR, Capability.SIDE_BY_SIDE}
    )
    why_not: ClassVar[Mapping[Capability, str]] = {
        Capability.VARIANT_URLS: resource.NO_VARIANT_URLS
    }

    def validate_flavor(self, config: ServiceConfig) -> None:
        assert isinstance(config, Seldon2Config)
        if config.service_account_name:
            raise InvalidConfigError(
                "service_account_name: Seldon Core 2 models run inside shared Servers; set the "
                "ServiceAccount on the Server (spec.podSpec) instead"
            )
        res = config.resources
        if res is not None and (res.limits or set(res.requests) - {"memory"}):
            raise InvalidConfigError(
                "resources: a Seldon Core 2 Model only declares the memory it needs "
                "(resources.requests.memory or memory); CPU, GPU and limits belong to the "
                "Server it is scheduled on"
            )
        creds = self.settings.storage_credentials
        if creds is None:
            return
        scheme = config.model_uri.split("://", 1)[0].lower()
        remote = storage.REMOTE[creds.type]
        if scheme != remote:
            raise InvalidConfigError(
                f"model_uri {config.model_uri!r}: Seldon Core 2 reads it through the rclone "
                f"remote named {scheme!r}, but the {creds.type} storage_credentials are "
                f"written as the remote {remote!r}; use a {remote}:// URI"
            )

    def server_from(self, obj: dict[str, Any]) -> KubernetesModelServer | None:
        """Challenger Models are part of a rollout, not model servers of their own."""
        if ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_ROLE):
            return None
        return super().server_from(obj)
