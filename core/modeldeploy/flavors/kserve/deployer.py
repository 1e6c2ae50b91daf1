"""The `kserve` flavor's deployer (entry point `modeldeploy.flavors: kserve`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployerSettings
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kserve import resource, storage
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kserve.server import KServeModelServer
from modeldeploy.flavors.kserve.settings import KServeDeployerSettings
from modeldeploy.flavors.kserve.traffic import NO_MIRROR
from modeldeploy.flavors.kubernetes.deployer import KubernetesModelDeployer
from modeldeploy.flavors.kubernetes.resources import ResourceKind
from modeldeploy.flavors.kubernetes.secrets import SecretLayout
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer
from modeldeploy.progressive.queries import KNATIVE
from modeldeploy.traffic import Capability


class KServeModelDeployer(KubernetesModelDeployer):
    """KServe `InferenceService`s in one namespace.

    Storage credentials become a Secret (with KServe's `serving.kserve.io/s3-*`
    annotations for S3) attached to a ServiceAccount of the same name, which the predictor
    runs as; KServe's credential builder injects them into the storage initializer.
    """

    flavor: ClassVar[str] = "kserve"
    config_class: ClassVar[type[ServiceConfig]] = KServeConfig
    settings_class: ClassVar[type[DeployerSettings]] = KServeDeployerSettings
    server_class: ClassVar[type[KubernetesModelServer]] = KServeModelServer
    kind: ClassVar[ResourceKind] = resource.KIND
    #: Knative mode's canaryTrafficPercent (two revisions side by side, weighted) or Standard
    #: mode's spec.canary[] (a second Deployment, weighted); no mirroring
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TRAFFIC_SPLIT, Capability.SIDE_BY_SIDE, Capability.VARIANT_URLS}
    )
    why_not: ClassVar[Mapping[Capability, str]] = {Capability.MIRROR: NO_MIRROR}
    #: Knative's queue-proxy request metrics, per revision; a Standard-mode server answers
    #: its own (`KServeModelServer.metric_queries`: none per variant)
    metric_queries = KNATIVE
    secret_layout: ClassVar[SecretLayout] = storage.LAYOUT
    # What KServe's storage initializer fetches.
    uri_schemes: ClassVar[tuple[str, ...]] = (
        "s3",
        "gs",
        "https",
        "http",
        "pvc",
        "hf",
        "oci",
        "hdfs",
        "webhdfs",
    )

    def validate_flavor(self, config: ServiceConfig) -> None:
        assert isinstance(config, KServeConfig)
        if config.service_account_name and self.secrets_configured():
            raise InvalidConfigError(
                "service_account_name and storage_credentials are both set; KServe reads "
                "storage credentials through the ServiceAccount modeldeploy writes, so "
                "attach your Secret to your ServiceAccount yourself or drop one of the two"
            )
