"""A KServe model server: one `InferenceService` with a `predictor.model`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import (
    InvalidConfigError,
    ModelDeployError,
    ModelServerNotFoundError,
    PlatformError,
)
from modeldeploy.flavors.kserve import canary, resource, traffic
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kserve.settings import KServeDeployerSettings
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation
from modeldeploy.flavors.kubernetes.watching import WatchTimeout, watch_until
from modeldeploy.progressive.queries import KNATIVE, KSERVE_STANDARD
from modeldeploy.redaction import get_logger
from modeldeploy.status import ServiceState
from modeldeploy.traffic import MetricQueries, TrafficStatus
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

    def build_object(
        self, config: ServiceConfig, secret: str | None, created_at: datetime
    ) -> dict[str, Any]:
        obj = super().build_object(config, secret, created_at)
        assert isinstance(config, KServeConfig)
        if config.deployment_mode:
            obj["metadata"]["annotations"][resource.MODE_ANNOTATION] = config.deployment_mode
        return obj

    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        assert isinstance(config, KServeConfig)
        account = self.deployer.secrets.service_account if secret else None
        return resource.build_spec(config, account)

    def mark(self, desired: dict[str, Any], replaced: dict[str, Any] | None) -> None:
        super().mark(desired, replaced)
        resource.mark(desired, replaced)

    def _rewrite(self, current: dict[str, Any], config: ServiceConfig, secret: str | None) -> None:
        """Keep the predictor's name: in Standard mode it names the serving Deployment (a
        promoted canary's), and KServe refuses a rename without a model change."""
        name = canary.stable_name(current)
        super()._rewrite(current, config, secret)
        if name:
            current["spec"]["predictor"]["name"] = name

    def is_current(self, obj: dict[str, Any], from_event: bool) -> bool:
        if traffic.in_rollout(obj) or canary.in_rollout(obj):
            return True  # the champion serves; observe() reads the route
        if resource.stop_requested(obj):
            return True  # observe() waits for the Stopped condition itself
        if resource.is_standard(obj):
            if not resource.may_conclude(obj):
                return False  # pending either way: spare the Deployment read
            deployment = self._predictor_deployment(obj)
            return deployment is not None and resource.template_is_ours(obj, deployment)
        return resource.knative_current(obj)

    def observe(self, obj: dict[str, Any]) -> Observation:
        if traffic.in_rollout(obj):  # active while a routed revision serves
            serving = traffic.serving_revision(obj)
            state = ServiceState.ACTIVE if serving else ServiceState.PENDING_STARTUP
            return Observation(state, revision=serving)
        if canary.in_rollout(obj):  # the stable predictor serves beside the canary
            ready = resource.conditions(obj.get("status") or {}).get("Ready", {})
            serves = ready.get("status") == "True"
            return Observation(ServiceState.ACTIVE if serves else ServiceState.PENDING_STARTUP)
        if resource.is_standard(obj) and not resource.stop_requested(obj):
            return resource.observe(obj, self._deployment or {})
        return resource.observe(obj)

    _deployment: dict[str, Any] | None = None

    def _predictor_deployment(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """`<name>[-<predictor name>]-predictor` (apps/v1), which KServe's raw reconciler
        owns; kept for observe."""
        kube = self.deployer.kube
        from kubernetes import client

        name = canary.deployment_name(self.name, canary.stable_name(obj))
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
    # Knative mode: `traffic` (canaryTrafficPercent); Standard mode: `canary` (spec.canary).

    @property
    def metric_queries(self) -> MetricQueries:
        """`modeldeploy.traffic.ServerMetrics`: no queue-proxy in Standard mode."""
        standard = self.obj is not None and resource.is_standard(self.obj)
        return KSERVE_STANDARD if standard else KNATIVE

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
        """The challenger's model at 0 % beside the champion's: a new revision (Knative
        mode) or a `spec.canary` entry (Standard mode)."""
        config = self.deployer.parse_config(config)
        assert isinstance(config, KServeConfig)
        self.deployer.validate_deploy(config)
        where = self.where()
        fresh = self._fresh()
        if resource.is_standard(fresh):
            self._add_canary(fresh, config)
            return
        traffic.check_can_split(fresh, where)
        secret = self.deployer.secrets.ensure(server=self.name)

        def change(current: dict[str, Any]) -> None:
            traffic.check_can_split(current, where)
            champion = traffic.current_record(current)
            rolled_out = resource.predictor_status(current)["latestRolledoutRevision"]
            self._rewrite(current, config, secret)
            traffic.begin(current, champion, str(rolled_out))

        self._write(change)
        self.config = config

    def _challenger_spec(
        self, current: dict[str, Any], config: KServeConfig, secret: str | None
    ) -> tuple[dict[str, Any], str]:
        """The challenger's predictor and config record, as a rewrite would write them."""
        scratch = copy.deepcopy(current)
        super()._rewrite(scratch, config, secret)
        return scratch["spec"]["predictor"], traffic.current_record(scratch)

    def _add_canary(self, fresh: dict[str, Any], config: KServeConfig) -> None:
        where = self.where()
        if config.deployment_mode not in (None, "Standard"):
            raise InvalidConfigError(
                f"{where} runs in KServe Standard mode and the challenger asks for "
                f"deployment_mode {config.deployment_mode}; KServe refuses a change of mode, "
                "so leave deployment_mode unset or Standard"
            )
        predictor, _ = self._challenger_spec(fresh, config, None)
        canary.check_can_split(fresh, where, predictor)
        secret = self.deployer.secrets.ensure(server=self.name)

        def change(current: dict[str, Any]) -> None:
            predictor, record = self._challenger_spec(current, config, secret)
            canary.check_can_split(current, where, predictor)
            name = canary.canary_name(record, canary.stable_name(current))
            canary.begin(current, canary.canary_predictor(predictor, name), record)

        self._write(change)

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
        obj = self._fresh()
        if canary.in_rollout(obj):
            self._set_canary_percent(challenger_percent)
            return
        if not traffic.in_rollout(obj):
            raise ModelDeployError(f"{self.where()} has no challenger to route traffic to")
        self._set_route(challenger_percent)

    def _set_canary_percent(self, percent: int) -> None:
        """Write `spec.canary[0].trafficPercent` alone: no pod template changes."""

        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            self._check_identity(current)
            if not canary.in_rollout(current):
                raise ModelDeployError(f"{self.where()} has no challenger to route traffic to")
            if canary.canary_percent(current) == percent:
                return None
            canary.set_percent(current, percent)
            return current

        self.absorb(self.resources.update(self.name, mutate))

    def traffic_status(self) -> TrafficStatus:
        obj = self._fresh()
        if resource.is_standard(obj):
            cluster_local = self.settings.use_cluster_local_address
            return canary.status(obj, self._path(), cluster_local)
        return traffic.status(obj, self._path(), self.prediction_url)

    def promote_challenger(self) -> None:
        """Knative: drop `canaryTrafficPercent`, the challenger's revision takes all traffic.
        Standard: the challenger's config becomes the predictor under the canary's name, so
        KServe makes the canary's Deployment the stable one, and the entry goes."""
        obj = self._fresh()
        if canary.in_rollout(obj):
            challenger = self.deployer.parse_config(canary.challenger_record(obj))
            assert isinstance(challenger, KServeConfig)
            secret = self.deployer.secrets.ensure(server=self.name)

            def change(current: dict[str, Any]) -> None:
                name = canary.ours(current)
                if not canary.in_rollout(current) or not name:
                    raise ModelDeployError(f"{self.where()} has no challenger to promote")
                super(KServeModelServer, self)._rewrite(current, challenger, secret)
                current["spec"]["predictor"]["name"] = name

            self._write(change)
            self.config = challenger
            return
        if not traffic.in_rollout(obj):
            raise ModelDeployError(f"{self.where()} has no challenger to promote")
        self._set_route(None)

    def remove_challenger(self) -> None:
        """Traffic back on the champion at once. Knative: the champion's config is then
        written back (a new revision at 0 %) and takes the traffic once it is ready.
        Standard: the canary entry goes, and KServe deletes its Deployment."""
        obj = self._fresh()
        if resource.is_standard(obj):
            if canary.in_rollout(obj):
                self._write(canary.remove)
            return
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
