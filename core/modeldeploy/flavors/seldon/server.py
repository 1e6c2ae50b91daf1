"""A Seldon Core 1 model server: one `SeldonDeployment` with one predictor."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import ModelDeployError, PlatformError
from modeldeploy.flavors.kubernetes import pods, protocols
from modeldeploy.flavors.kubernetes.deployments import list_deployments, template_rolled_over
from modeldeploy.flavors.kubernetes.logs import list_pods
from modeldeploy.flavors.kubernetes.records import ANNOTATION_STOPPED
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation
from modeldeploy.flavors.seldon import resource
from modeldeploy.flavors.seldon.config import SeldonConfig

logger = logging.getLogger("modeldeploy.seldon")


class SeldonModelServer(KubernetesModelServer):
    """Stop scales the predictor to zero replicas (Seldon Core 1 has no stop switch) and marks
    the object, so the state reads `inactive` once Seldon has acted on it."""

    flavor: ClassVar[str] = "seldon"
    config: SeldonConfig
    # Seldon's status stays `Creating` while pods fail (seldondeployment_controller.go
    # :1800-1829, 2137-2150): the pods are re-read while waiting to report the cause.
    recheck_interval: ClassVar[float | None] = 1.0

    @property
    def container_name(self) -> str:
        return self.name

    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        assert isinstance(config, SeldonConfig)
        return resource.build_spec(config, self.name, secret)

    def observe(self, obj: dict[str, Any]) -> Observation:
        return resource.observe(obj, stopped=self.stop_requested(obj))

    def stop_requested(self, obj: dict[str, Any]) -> bool:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return annotations.get(ANNOTATION_STOPPED) == "true"

    def apply_stop(self, obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("annotations", {})[ANNOTATION_STOPPED] = "true"
        resource.set_replicas(obj, 0)

    def apply_start(self, obj: dict[str, Any]) -> None:
        annotations = obj["metadata"].get("annotations") or {}
        annotations.pop(ANNOTATION_STOPPED, None)
        resource.set_replicas(obj, self.config.replicas)

    def pod_selector(self) -> str:
        return f"{resource.POD_LABEL}={self.name}"

    def start_failure(self) -> str | None:
        return pods.failure(list_pods(self.deployer.kube, self.pod_selector()), self._fetches_ours)

    def rollout_pending(self) -> str | None:
        """Seldon's `Available` comes from the Deployments' ready and unavailable replica
        counts, not from their rollout (seldondeployment_controller.go:1714-1822), so it
        can describe old pods the Deployment controller has not replaced yet; confirm that
        every Deployment of this SeldonDeployment has rolled its current template over."""
        try:
            found = list_deployments(self.deployer.kube, self.pod_selector())
        except ModelDeployError as exc:  # e.g. no RBAC for deployments: Seldon's word stands
            logger.debug("cannot read the Deployments of %s: %s", self.name, exc)
            return None
        for deployment in found:
            done, why = template_rolled_over(deployment)
            if not done:
                return f"Deployment {deployment['metadata'].get('name')}: {why}"
        return None

    def _fetches_ours(self, pod: dict[str, Any]) -> bool:
        """The pod's model initializer copies our model URI: the operator passes it as the
        first argument (seldon-core@v1.17.1 operator/controllers/
        model_initializer_injector.go:219-228). Pods of another model (the one being
        replaced, or rolled back from) are not ours to judge, nor pods that do not say."""
        return any(
            self.config.model_uri in (c.get("args") or [])
            for c in (pod.get("spec") or {}).get("initContainers") or []
            if str(c.get("name", "")).endswith("-model-initializer")
        )

    @property
    def prediction_url(self) -> str | None:
        root = resource.service_root(
            self.obj, self.deployer.settings.ingress_base_url, self.namespace, self.name
        )
        return None if root is None else root + resource.prediction_path(self.config, self.name)

    def predict(self, data: Any) -> Any:
        url = self.prediction_url
        if url is None:
            raise PlatformError(
                f"seldon model server {self.uuid} has no prediction URL yet: set "
                "ingress_base_url to your ingress gateway, or wait until Seldon reports "
                "status.address"
            )
        timeout = self.deployer.settings.request_timeout
        if self.config.resolved_protocol() == "v2":
            body = protocols.post_json(url, protocols.v2_request(data), timeout=timeout)
            return protocols.v2_response(body)
        body = protocols.post_json(url, protocols.seldon_request(data), timeout=timeout)
        return protocols.seldon_response(body)
