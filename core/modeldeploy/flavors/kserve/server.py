"""A KServe model server: one `InferenceService` with a `predictor.model`."""

from __future__ import annotations

from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import PlatformError
from modeldeploy.flavors.kserve import resource
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation


class KServeModelServer(KubernetesModelServer):
    """Stop and start use KServe's own `serving.kserve.io/stop` annotation."""

    flavor: ClassVar[str] = "kserve"
    config: KServeConfig

    @property
    def container_name(self) -> str:
        return resource.CONTAINER

    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        assert isinstance(config, KServeConfig)
        account = self.deployer.secrets.service_account if secret else None
        return resource.build_spec(config, account)

    def observe(self, obj: dict[str, Any]) -> Observation:
        return resource.observe(obj)

    def stop_requested(self, obj: dict[str, Any]) -> bool:
        return resource.stop_requested(obj)

    def apply_stop(self, obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("annotations", {})[resource.STOP_ANNOTATION] = "true"

    def apply_start(self, obj: dict[str, Any]) -> None:
        (obj["metadata"].get("annotations") or {}).pop(resource.STOP_ANNOTATION, None)

    def pod_selector(self) -> str:
        return f"{resource.POD_LABEL}={self.name}"

    @property
    def prediction_url(self) -> str | None:
        url = resource.status_url(self.obj)
        return None if url is None else url + resource.prediction_path(self.config, self.name)

    def predict(self, data: Any) -> Any:
        path = resource.prediction_path(self.config, self.name)
        target = resource.request_target(self.obj, self.deployer.settings.ingress_base_url, path)
        if target is None:
            self.check_status()
            target = resource.request_target(
                self.obj, self.deployer.settings.ingress_base_url, path
            )
        if target is None:
            raise PlatformError(
                f"kserve model server {self.uuid} has no status.url yet; wait until it is "
                "ready (KServe sets the URL once the predictor is routed)"
            )
        url, host = target
        timeout = self.deployer.settings.request_timeout
        if self.config.protocol_version == "v2":
            body = protocols.post_json(url, protocols.v2_request(data), host=host, timeout=timeout)
            return protocols.v2_response(body)
        body = protocols.post_json(url, protocols.v1_request(data), host=host, timeout=timeout)
        return protocols.v1_response(body)
