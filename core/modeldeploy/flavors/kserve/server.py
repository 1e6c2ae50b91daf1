"""A KServe model server: one `InferenceService` with a `predictor.model`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import PlatformError
from modeldeploy.flavors.kserve import resource
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kserve.settings import KServeDeployerSettings
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation


class KServeModelServer(KubernetesModelServer):
    """Stop and start use KServe's own `serving.kserve.io/stop` annotation."""

    flavor: ClassVar[str] = "kserve"
    config: KServeConfig
    # Standard mode: a rollout progresses on the predictor Deployment, which KServe does not
    # always mirror on the InferenceService (PredictorReady stays True meanwhile).
    recheck_interval: ClassVar[float | None] = 1.0

    def recheck_for(self, obj: dict[str, Any] | None) -> float | None:
        """Only Standard mode: in Knative mode the revision's readiness shows on the object."""
        return self.recheck_interval if obj is not None and resource.is_standard(obj) else None

    @property
    def container_name(self) -> str:
        return resource.CONTAINER

    @property
    def settings(self) -> KServeDeployerSettings:
        settings = self.deployer.settings
        assert isinstance(settings, KServeDeployerSettings)
        return settings

    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        assert isinstance(config, KServeConfig)
        account = self.deployer.secrets.service_account if secret else None
        return resource.build_spec(config, account)

    def mark(self, desired: dict[str, Any], replaced: dict[str, Any] | None) -> None:
        super().mark(desired, replaced)
        resource.mark(desired, replaced)

    def is_current(self, obj: dict[str, Any], from_event: bool) -> bool:
        if resource.stop_requested(obj):
            return True  # observe() waits for the Stopped condition itself
        if resource.is_standard(obj):
            if not resource.may_conclude(obj):
                return False  # pending either way: spare the Deployment read
            deployment = self._predictor_deployment()
            return deployment is not None and resource.template_is_ours(obj, deployment)
        return resource.knative_current(obj)

    def observe(self, obj: dict[str, Any]) -> Observation:
        if resource.is_standard(obj) and not resource.stop_requested(obj):
            return resource.observe(obj, self._deployment or {})
        return resource.observe(obj)

    _deployment: dict[str, Any] | None = None

    def _predictor_deployment(self) -> dict[str, Any] | None:
        """`<name>-predictor` (apps/v1), which KServe's raw reconciler owns; kept for observe."""
        kube = self.deployer.kube
        from kubernetes import client

        name = f"{self.name}-predictor"
        try:
            resp: Any = kube.retry.call(
                client.AppsV1Api(kube.api_client).read_namespaced_deployment,
                name,
                self.namespace,
                _preload_content=False,
                _request_timeout=kube.timeout,
            )
        except Exception as exc:
            if api_status(exc) == 404:
                self._deployment = None
                return None
            raise translate(exc, f"reading Deployment {self.namespace}/{name}") from None
        deployment: dict[str, Any] = json.loads(resp.data)
        self._deployment = deployment
        return deployment

    def stop_requested(self, obj: dict[str, Any]) -> bool:
        return resource.stop_requested(obj)

    def apply_stop(self, obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("annotations", {})[resource.STOP_ANNOTATION] = "true"

    def apply_start(self, obj: dict[str, Any]) -> None:
        (obj["metadata"].get("annotations") or {}).pop(resource.STOP_ANNOTATION, None)

    def pod_selector(self) -> str:
        return f"{resource.POD_LABEL}={self.name}"

    # --- predictions -------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        """The protocol the server speaks: configured, defaulted on the object, or KServe's."""
        model = ((self.obj or {}).get("spec") or {}).get("predictor", {}).get("model") or {}
        return self.config.resolved_protocol(model.get("protocolVersion"))

    def _path(self) -> str:
        return resource.prediction_path(self.protocol, self.config.served_model_name or self.name)

    @property
    def prediction_url(self) -> str | None:
        target = resource.request_target(
            self.obj, None, self._path(), self.settings.use_cluster_local_address
        )
        return None if target is None else target[0]

    def predict(self, data: Any) -> Any:
        def target() -> tuple[str, str | None] | None:
            return resource.request_target(
                self.obj,
                self.settings.ingress_base_url,
                self._path(),
                self.settings.use_cluster_local_address,
            )

        found = target()
        if found is None:
            self.check_status()
            found = target()
        if found is None:
            raise PlatformError(
                f"kserve model server {self.uuid} has no status.url yet; wait until it is "
                "ready (KServe sets the URL once the predictor is routed)"
            )
        url, host = found
        timeout = self.settings.request_timeout
        if self.protocol == "v2":
            body = protocols.post_json(url, protocols.v2_request(data), host=host, timeout=timeout)
            return protocols.v2_response(body)
        body = protocols.post_json(url, protocols.v1_request(data), host=host, timeout=timeout)
        return protocols.v1_response(body)
