"""A Seldon Core 1 model server: one `SeldonDeployment`, one predictor (two while a
progressive rollout runs a challenger beside the champion, see `traffic.py`)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import InvalidConfigError, ModelDeployError, PlatformError
from modeldeploy.flavors.kubernetes import pods, protocols
from modeldeploy.flavors.kubernetes.client import KubeClient
from modeldeploy.flavors.kubernetes.deployments import (
    list_deployments,
    rollout_complete,
    template_rolled_over,
)
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.logs import list_pods
from modeldeploy.flavors.kubernetes.records import ANNOTATION_STOPPED, read_record
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation
from modeldeploy.flavors.seldon import resource
from modeldeploy.flavors.seldon import traffic as split
from modeldeploy.flavors.seldon.config import SeldonConfig
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus

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

    def _rewrite(self, current: dict[str, Any], config: ServiceConfig, secret: str | None) -> None:
        """An in-place update keeps the serving predictor's name (after a promotion it is
        the former challenger's), so the operator rolls its Deployments instead of
        replacing them."""
        keep = split.champion_name(current) if split.predictors(current) else None
        super()._rewrite(current, config, secret)
        if keep is not None:
            current["spec"]["predictors"][0]["name"] = keep

    # --- TrafficControl (modeldeploy.traffic) --------------------------------------------

    def add_challenger(self, config: ServiceConfig) -> None:
        """A second predictor at 0 % beside the champion at 100 %; it loads while the
        champion keeps all traffic (Seldon applies routes once both are available)."""
        config = self.deployer.parse_config(config)
        assert isinstance(config, SeldonConfig)
        self.deployer.validate_deploy(config)
        if not self.deployer.settings.ingress_base_url:
            raise InvalidConfigError(
                "Seldon Core 1 splits and mirrors traffic in the Istio VirtualService of the "
                "SeldonDeployment, which only requests through the ingress gateway pass; "
                "status.address is one predictor's own service and bypasses the split. Set "
                "ingress_base_url to your Istio ingress gateway (and send clients there), "
                "or use strategy in_place"
            )
        if config.resolved_protocol() != self.config.resolved_protocol():
            raise InvalidConfigError(
                f"the challenger speaks protocol {config.resolved_protocol()!r} but the "
                f"champion {self.config.resolved_protocol()!r}: Seldon Core 1 sets the protocol "
                "for the whole SeldonDeployment; deploy it in place instead"
            )
        # a missing permission on the VirtualService says so now, before anything changes
        current = self.resources.get(self.name)
        if current is not None:
            self._virtual_service(current)
        secret = self.deployer.secrets.ensure(server=self.name)

        def change(current: dict[str, Any]) -> None:
            generation = int((current.get("metadata") or {}).get("generation") or 0)
            lone = resource.build_spec(config, self.name, secret)["predictors"][0]
            # a name of its own per rollout: a removed challenger's Deployments may linger
            # until the operator's next complete reconcile, and must never pass for this one
            lone["name"] = f"{CHALLENGER_PREFIX}{generation + 1}"
            split.add_challenger(current, lone, config.to_record())

        self._write(change)

    def set_traffic(
        self, challenger_percent: int, *, mirror_percent: int = 0, sticky_header: str | None = None
    ) -> None:
        if sticky_header:
            raise InvalidConfigError(
                "Seldon Core 1 routes each request by weight alone (its Istio VirtualService "
                "has no header-based stickiness); remove sticky_header from the strategy"
            )
        self._write(lambda current: split.set_traffic(current, challenger_percent, mirror_percent))

    def traffic_status(self) -> TrafficStatus:
        obj = self.resources.get(self.name)
        if obj is None:
            raise ModelDeployError(f"{self.where()} no longer exists")
        self.absorb(obj)
        champion, challenger = split.split_predictors(obj)
        record = split.challenger_record(obj)
        ours = read_record(obj, self.deployer.config_class)
        configs: dict[str, ServiceConfig] = {
            CHAMPION: ours.config if ours is not None else self.config
        }
        named = {CHAMPION: champion}
        if challenger is not None and record is not None:
            configs[CHALLENGER] = self._challenger_config(record)
            named[CHALLENGER] = challenger
        ready = {v: self._predictor_ready(obj, p) for v, p in named.items()}
        errors = {
            v: None if ready[v] else self._predictor_failure(obj, p, configs[v])
            for v, p in named.items()
        }
        versions = {v: (c.model_version, c.model_uri) for v, c in configs.items()}
        return split.status(obj, versions, ready, errors, self._virtual_service(obj))

    def _virtual_service(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The operator's Istio VirtualService, when it routes this SeldonDeployment: the
        spec's `traffic` changes ~40 ms before the operator rewrites it (a traffic-only
        change rolls nothing and Seldon 1 has no observedGeneration), so the VirtualService
        is what says a split is routed. None without Istio, or before the operator made it."""
        if not split.istio_routes(obj):
            return None
        return read_virtual_service(
            self.deployer.kube, self.namespace, split.virtual_service_name(obj)
        )

    def promote_challenger(self) -> None:
        """The challenger's predictor alone, under the challenger's config: its Deployments
        keep serving (same name, same template), the champion's are deleted, and the
        record says what now serves."""
        record = split.challenger_record(self.resources.get(self.name) or {})
        if record is None:
            raise ModelDeployError(f"{self.where()} has no challenger to promote")
        config = self._challenger_config(record)
        secret = self.deployer.secrets.ensure(server=self.name)

        def change(current: dict[str, Any]) -> None:
            champion, challenger = split.split_predictors(current)
            if challenger is None:
                raise ModelDeployError(f"{self.where()}: its challenger is gone")
            others = split.foreign(current, champion, challenger)
            KubernetesModelServer._rewrite(self, current, config, secret)
            current["spec"]["predictors"][0]["name"] = challenger["name"]
            current["spec"]["predictors"].extend(others)

        self._write(change)
        self.config = config

    def remove_challenger(self) -> None:
        self._write(split.remove)

    def _challenger_config(self, record: dict[str, Any]) -> SeldonConfig:
        data = {k: v for k, v in (record.get("config") or {}).items() if k != "flavor"}
        config = self.deployer.parse_config(data)
        assert isinstance(config, SeldonConfig)
        return config

    def _predictor_ready(self, obj: dict[str, Any], predictor: dict[str, Any]) -> bool:
        """Available in Seldon's status, and (when we may read Deployments) every one of
        the predictor's Deployments rolled out: a shadow flag rolls its pods."""
        if not split.predictor_available(obj, predictor):
            return False
        names = set(split.deployment_names(self.name, predictor))
        try:
            found = list_deployments(self.deployer.kube, self.pod_selector())
        except ModelDeployError:  # no RBAC for deployments: the status stands
            return True
        mine = [d for d in found if d["metadata"].get("name") in names]
        return len(mine) == len(names) and all(
            rollout_complete(d)[0] and split.engine_runs(d, predictor) for d in mine
        )

    def is_current(self, obj: dict[str, Any], from_event: bool) -> bool:
        """Seldon's status, else (Available, but unchanged since our write) the Deployments:
        a write they already match changes no status at all (see `traffic.deployments_serve`)."""
        if super().is_current(obj, from_event):
            return True
        if str((obj.get("status") or {}).get("state") or "") != "Available":
            return False
        try:
            found = list_deployments(self.deployer.kube, self.pod_selector())
        except ModelDeployError:
            return False
        return split.deployments_serve(obj, found)

    def _predictor_failure(
        self, obj: dict[str, Any], predictor: dict[str, Any], config: ServiceConfig
    ) -> str | None:
        """Why a predictor's pods will not start (the pods say at once; Seldon's status only
        after the progress deadline, and then for the whole SeldonDeployment)."""
        selector = f"{self.pod_selector()},seldon-app={split.predictor_key(self.name, predictor)}"
        reason = pods.failure(
            list_pods(self.deployer.kube, selector), lambda pod: _fetches(pod, config.model_uri)
        )
        if reason:
            return reason
        if str((obj.get("status") or {}).get("state") or "") == "Failed":
            return resource.failure_reason(obj.get("status") or {})
        return None

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
        return _fetches(pod, self.config.model_uri)

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


def read_virtual_service(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """One VirtualService as a dict, None when it does not exist. A 403 names the permission
    to grant: without it no traffic split can be confirmed as routed."""
    where = f"Istio VirtualService {namespace}/{name}"

    def once() -> dict[str, Any]:
        found: dict[str, Any] = kube.custom.get_namespaced_custom_object(
            split.VS_GROUP,
            split.VS_VERSION,
            namespace,
            split.VS_PLURAL,
            name,
            _request_timeout=kube.timeout,
        )
        return found

    try:
        return kube.retry.call(once, what=f"get {split.VS_PLURAL}")
    except Exception as exc:
        code = api_status(exc)
        if code == 404:
            return None
        if code == 403:
            raise PlatformError(
                f"reading {where}: permission denied. Seldon Core 1 routes this "
                "SeldonDeployment through that VirtualService, and only it says when a "
                "traffic split is routed: grant the deployer's identity `get` on "
                f"`virtualservices` in API group `{split.VS_GROUP}` in namespace {namespace} "
                "(see RBAC in docs/flavors/seldon.md)"
            ) from None
        raise translate(exc, f"reading {where}", kube.host) from None


#: challenger predictors are named `<prefix><generation of the write that added them>`
CHALLENGER_PREFIX = "g"


def _fetches(pod: dict[str, Any], model_uri: str) -> bool:
    """The pod's model initializer copies `model_uri`: the operator passes it as the first
    argument (seldon-core@v1.17.1 operator/controllers/model_initializer_injector.go:219-228).
    Pods of another model (the one being replaced, or rolled back from) are not ours to
    judge, nor pods that do not say."""
    return any(
        model_uri in (c.get("args") or [])
        for c in (pod.get("spec") or {}).get("initContainers") or []
        if str(c.get("name", "")).endswith("-model-initializer")
    )
