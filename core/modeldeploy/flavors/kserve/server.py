"""A KServe model server: one `InferenceService` with a `predictor.model`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import (
    InvalidConfigError,
    ModelDeployError,
    ModelServerNotFoundError,
    PlatformError,
)
from modeldeploy.flavors.kserve import resource, traffic
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kserve.settings import KServeDeployerSettings
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation
from modeldeploy.flavors.kubernetes.watching import WatchTimeout, watch_until
from modeldeploy.redaction import get_logger
from modeldeploy.status import ServiceState
from modeldeploy.traffic import TrafficStatus
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline

logger = get_logger("modeldeploy.kserve")
#: how long a rollback waits for KServe to make the challenger's revision it has not made yet
CHALLENGER_SEEN_TIMEOUT = 60.0


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
        if traffic.in_rollout(obj):
            return True  # the champion's revision serves; observe() reads the route
        if resource.stop_requested(obj):
            return True  # observe() waits for the Stopped condition itself
        if resource.is_standard(obj):
            if not resource.may_conclude(obj):
                return False  # pending either way: spare the Deployment read
            deployment = self._predictor_deployment()
            return deployment is not None and resource.template_is_ours(obj, deployment)
        return resource.knative_current(obj)

    def observe(self, obj: dict[str, Any]) -> Observation:
        if traffic.in_rollout(obj):  # active while a routed revision serves
            serving = traffic.serving_revision(obj)
            state = ServiceState.ACTIVE if serving else ServiceState.PENDING_STARTUP
            return Observation(state, revision=serving)
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

    # --- progressive delivery (modeldeploy.traffic.TrafficControl) ----------------------

    def _fresh(self) -> dict[str, Any]:
        obj = self.resources.get(self.name)
        if obj is None:
            raise ModelServerNotFoundError(f"{self.resources.where(self.name)} no longer exists")
        self._check_identity(obj)
        self.absorb(obj)
        return obj

    def _set_route(self, percent: int | None) -> dict[str, Any]:
        """Write `canaryTrafficPercent` alone: anything else would roll a new revision."""

        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            self._check_identity(current)
            if traffic.canary_percent(current) == percent:
                return None
            traffic.set_percent(current, percent)
            return current

        obj = self.resources.update(self.name, mutate)
        self.absorb(obj)
        return obj

    def add_challenger(self, config: ServiceConfig) -> None:
        """The challenger's model as a new revision at 0 % beside the champion's."""
        config = self.deployer.parse_config(config)
        assert isinstance(config, KServeConfig)
        self.deployer.validate_deploy(config)
        where = self.where()
        traffic.check_can_split(self._fresh(), where)
        secret = self.deployer.secrets.ensure(server=self.name)

        def change(current: dict[str, Any]) -> None:
            traffic.check_can_split(current, where)
            champion = traffic.current_record(current)
            rolled_out = resource.predictor_status(current)["latestRolledoutRevision"]
            self._rewrite(current, config, secret)
            traffic.begin(current, champion, str(rolled_out))

        self._write(change)
        self.config = config

    def set_traffic(
        self,
        challenger_percent: int,
        *,
        mirror_percent: int = 0,
        sticky_header: str | None = None,
    ) -> None:
        if mirror_percent:
            raise InvalidConfigError(traffic.NO_MIRROR)
        if sticky_header:
            raise InvalidConfigError(traffic.NO_STICKY)
        if not 0 <= challenger_percent <= 100:
            raise InvalidConfigError(f"challenger_percent must be 0..100, got {challenger_percent}")
        if not traffic.in_rollout(self._fresh()):
            raise ModelDeployError(f"{self.where()} has no challenger to route traffic to")
        self._set_route(challenger_percent)

    def traffic_status(self) -> TrafficStatus:
        obj = self._fresh()
        return traffic.status(obj, self._path(), self.prediction_url)

    def promote_challenger(self) -> None:
        """Drop `canaryTrafficPercent`: the challenger's revision takes all traffic."""
        if not traffic.in_rollout(self._fresh()):
            raise ModelDeployError(f"{self.where()} has no challenger to promote")
        self._set_route(None)

    def remove_challenger(self) -> None:
        """Traffic back on the champion's revision at once; then the champion's config is
        written back (a new revision at 0 %) and takes the traffic once it is ready."""
        obj = self._fresh()
        if traffic.in_rollout(obj):
            self._set_route(0)
            if traffic.challenger_revision(obj) is None:
                # let KServe make the challenger's revision first, so the one made from the
                # write below is the last and cannot be mistaken for it
                self._wait_for(
                    lambda o: traffic.challenger_revision(o) is not None,
                    Deadline(CHALLENGER_SEEN_TIMEOUT),
                )
            champion = self.deployer.parse_config(traffic.champion_record(obj))
            assert isinstance(champion, KServeConfig)
            secret = self.deployer.secrets.ensure(server=self.name)

            def change(current: dict[str, Any]) -> None:
                self._rewrite(current, champion, secret)  # our rollout annotations go
                traffic.set_percent(current, 0)

            self._write(change)
            self.config = champion
        elif traffic.canary_percent(obj) != 0:
            return  # no challenger (an earlier call finished, or none was added)
        if self._champion_copy_ready(Deadline(DEFAULT_TIMEOUT)):
            self._set_route(None)

    def _wait_for(self, judge: Callable[[dict[str, Any]], bool | None], deadline: Deadline) -> bool:
        """Watch the object until `judge` says True or False (False on timeout too)."""

        def watch_judge(obj: dict[str, Any] | None, from_event: bool) -> bool | None:
            if obj is None:
                raise ModelServerNotFoundError(f"{self.where()} was deleted during a rollback")
            return judge(obj)

        try:
            return watch_until(self.resources, self.name, watch_judge, deadline)
        except WatchTimeout:
            return False

    def _champion_copy_ready(self, deadline: Deadline) -> bool:
        """Wait until the revision written by the rollback is ready (False: it failed or
        timed out; the champion's old revision then keeps 100 % under canary 0)."""

        def judge(obj: dict[str, Any]) -> bool | None:
            predictor = resource.predictor_status(obj)
            created = predictor.get("latestCreatedRevision")
            marked = (obj["metadata"].get("annotations") or {}).get(resource.MARK_REVISION)
            if not created or created == marked:
                return None
            if predictor.get("latestReadyRevision") == created:
                return True
            if resource.model_failure(obj.get("status") or {}):
                return False
            return None

        if not self._wait_for(judge, deadline):
            logger.warning(
                "%s: the champion's model, written back, did not become ready; its previous "
                "revision keeps all traffic (canaryTrafficPercent 0)",
                self.where(),
            )
            return False
        return True
