"""A Seldon Core 2 model server: one `Model`, answered by the mesh under its own name.

Progressive delivery uses Seldon's own mechanism: the challenger is a second `Model` beside
the champion, and an `Experiment` whose default is the champion splits the champion's
requests between the two (candidate weights) or mirrors them to the challenger (`mirror`).
Everything lives on the cluster (the challenger carries its config like any model server),
so any process can continue a rollout.
"""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import (
    ConflictError,
    InvalidConfigError,
    ModelDeployError,
    ModelServerNotFoundError,
    PlatformError,
)
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.freshness import Freshness, generation, mark_write
from modeldeploy.flavors.kubernetes.naming import label_value
from modeldeploy.flavors.kubernetes.records import (
    ANNOTATION_CONFIG,
    ANNOTATION_STOPPED,
    LABEL_FLAVOR,
    LABEL_SECRET,
    MANAGED_BY,
    MANAGER,
    PREFIX,
    record_annotations,
)
from modeldeploy.flavors.kubernetes.resources import CustomResources
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer, Observation
from modeldeploy.flavors.kubernetes.watching import WatchTimeout, watch_until
from modeldeploy.flavors.seldon2 import resource
from modeldeploy.flavors.seldon2.config import Seldon2Config
from modeldeploy.flavors.seldon2.settings import Seldon2DeployerSettings
from modeldeploy.progressive.queries import seldon2_selector
from modeldeploy.redaction import get_logger
from modeldeploy.status import ServiceState, utcnow
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficStatus, VariantStatus
from modeldeploy.waiting import Deadline

#: what a modeldeploy object beside a model server is for (challenger Model, Experiment)
LABEL_ROLE = PREFIX + "role"
#: the uuid of the model server a challenger or Experiment belongs to
LABEL_BELONGS_TO = PREFIX + "challenger-of"
ROLE_CHALLENGER = "challenger"
ROLE_EXPERIMENT = "rollout"
#: longest a `traffic_status()` replays the Experiment's history to judge its status
REPLAY_SECONDS = 1.0
#: longest `add_challenger` waits for the previous challenger to be unloaded, and a removed
#: Experiment for Seldon to stop routing by it (its finalizer is released only then)
GONE_SECONDS = 60.0
#: longest `promote_challenger` waits for the champion to have the promoted version
PROMOTE_SECONDS = 120.0

logger = get_logger("modeldeploy.seldon2")


class Seldon2ModelServer(KubernetesModelServer):
    """Stop scales the Model to zero replicas and marks it, like the Seldon Core 1 flavor."""

    flavor: ClassVar[str] = "seldon2"
    config: Seldon2Config
    _experiment_freshness: Freshness | None = None

    @property
    def settings(self) -> Seldon2DeployerSettings:
        settings = self.deployer.settings
        assert isinstance(settings, Seldon2DeployerSettings)
        return settings

    @property
    def container_name(self) -> str:
        return "agent"  # the Server pod's agent logs each model's loads and failures

    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        assert isinstance(config, Seldon2Config)
        return resource.build_spec(config, secret)

    def observe(self, obj: dict[str, Any]) -> Observation:
        return resource.observe(obj, stopped=self.stop_requested(obj))

    def stop_requested(self, obj: dict[str, Any]) -> bool:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return annotations.get(ANNOTATION_STOPPED) == "true"

    def apply_stop(self, obj: dict[str, Any]) -> None:
        obj["metadata"].setdefault("annotations", {})[ANNOTATION_STOPPED] = "true"
        obj.setdefault("spec", {})["replicas"] = 0

    def apply_start(self, obj: dict[str, Any]) -> None:
        (obj["metadata"].get("annotations") or {}).pop(ANNOTATION_STOPPED, None)
        obj.setdefault("spec", {})["replicas"] = self.config.replicas

    def pod_selector(self) -> str:
        return f"seldon-server-name={resource.hosting_server(self.config)}"

    def start_failure(self) -> str | None:
        return resource.model_failure(self.obj)

    # --- predictions -------------------------------------------------------------------

    @property
    def mesh_url(self) -> str:
        s = self.settings
        return (
            s.mesh_url
            or s.ingress_base_url
            or f"http://seldon-mesh.{self.namespace}.svc.cluster.local"
        )

    @property
    def prediction_url(self) -> str | None:
        return f"{self.mesh_url}/v2/models/{self.name}/infer"

    @property
    def request_headers(self) -> dict[str, str]:
        """Headers every prediction request needs: the mesh routes on `Seldon-Model`."""
        return {resource.MODEL_HEADER: self.name}

    def predict(self, data: Any) -> Any:
        from modeldeploy.http import JsonClient

        url = f"{self.mesh_url}/v2/models/{self.name}/infer"
        client = JsonClient(timeout=self.settings.request_timeout)
        body = client.post_json(url, protocols.v2_request(data), self.request_headers)
        if not isinstance(body, dict):
            raise PlatformError(f"prediction request to {url} answered {str(body)[:200]}")
        return protocols.v2_response(body)

    # --- the objects beside the champion -------------------------------------------------

    @property
    def challenger_name(self) -> str:
        return f"{self.name}-{ROLE_CHALLENGER}"

    @property
    def experiment_name(self) -> str:
        return f"{self.name}-{ROLE_EXPERIMENT}"

    @property
    def experiments(self) -> CustomResources:
        return CustomResources(self.deployer.kube, resource.EXPERIMENT_KIND, self.flavor)

    def _side_labels(self, role: str, secret: str | None = None) -> dict[str, str]:
        labels = {
            MANAGED_BY: MANAGER,
            LABEL_FLAVOR: self.flavor,
            LABEL_ROLE: role,
            LABEL_BELONGS_TO: str(self.uuid),
        }
        if secret:
            labels[LABEL_SECRET] = label_value(secret)
        return labels

    def _ours(self, obj: dict[str, Any] | None, role: str) -> bool:
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        return labels.get(LABEL_ROLE) == role and labels.get(LABEL_BELONGS_TO) == str(self.uuid)

    def _challenger(self, deleting: bool = False) -> dict[str, Any] | None:
        """The challenger Model (one being deleted only with `deleting`: Seldon's finalizer
        keeps it until the model is unloaded)."""
        obj = self.resources.get(self.challenger_name)
        if obj is not None and not self._ours(obj, ROLE_CHALLENGER):
            raise ConflictError(
                f"{self.resources.where(self.challenger_name)} exists but is not the "
                f"challenger of model server {self.uuid}; delete or rename it"
            )
        if obj is not None and not deleting and obj["metadata"].get("deletionTimestamp"):
            return None
        return obj

    def challenger_config(self) -> Seldon2Config | None:
        obj = self._challenger()
        if obj is None:
            return None
        raw = json.loads(((obj.get("metadata") or {}).get("annotations") or {})[ANNOTATION_CONFIG])
        raw.pop("flavor", None)
        return Seldon2Config.model_validate(raw)

    # --- TrafficControl ----------------------------------------------------------------

    def add_challenger(self, config: ServiceConfig) -> None:
        """A second Model beside the champion; it takes traffic only once an Experiment
        routes some to it."""
        parsed = self.deployer.parse_config(config)
        assert isinstance(parsed, Seldon2Config)
        self.deployer.validate_deploy(parsed)
        leaving = self._challenger(deleting=True)
        if leaving is not None and leaving["metadata"].get("deletionTimestamp"):
            self._wait_gone(self.resources, self.challenger_name)
        existing = self._challenger()
        annotations = record_annotations(parsed, utcnow())
        if existing is not None:
            have = (existing.get("metadata") or {}).get("annotations") or {}
            if have.get(ANNOTATION_CONFIG) == annotations[ANNOTATION_CONFIG]:
                return  # written by an earlier attempt of this rollout
            raise ConflictError(
                f"model server {self.uuid} already has a challenger "
                f"({existing['spec'].get('storageUri')}); promote or abort that rollout first"
            )
        secret = self.deployer.secrets.ensure(server=self.name)
        spec = resource.build_spec(parsed, secret)
        kind = resource.KIND
        self.resources.create(
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": {
                    "name": self.challenger_name,
                    "namespace": self.namespace,
                    "labels": self._side_labels(ROLE_CHALLENGER, secret),
                    "annotations": annotations,
                },
                "spec": spec,
            }
        )

    def set_traffic(
        self,
        challenger_percent: int,
        *,
        mirror_percent: int = 0,
        sticky_header: str | None = None,
    ) -> None:
        for what, value in (("challenger_percent", challenger_percent), ("mirror", mirror_percent)):
            if not 0 <= value <= 100:
                raise InvalidConfigError(f"{what} must be 0..100, got {value}")
        if sticky_header:
            raise InvalidConfigError(
                "Seldon Core 2.6 Experiments have no sticky sessions setting; leave "
                "sticky_header unset"
            )
        if self._challenger() is None:
            raise ModelDeployError(
                f"model server {self.uuid} has no challenger to route traffic to; start a "
                "rollout first"
            )
        if challenger_percent == 0 and mirror_percent == 0:
            self._delete_experiment()
            return
        spec = resource.experiment_spec(
            self.name, self.challenger_name, challenger_percent, mirror_percent
        )

        replaced: list[dict[str, Any]] = []

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            if not self._ours(current, ROLE_EXPERIMENT):
                raise ConflictError(
                    f"{self.experiments.where(self.experiment_name)} is not modeldeploy's "
                    f"rollout of model server {self.uuid}; delete or rename it"
                )
            if current.get("spec") == spec:
                return None
            replaced[:] = [copy.deepcopy(current)]
            mark_write(current, replaced[0])  # lets any process replay what followed
            current["spec"] = spec
            return current

        experiments = self.experiments
        if experiments.get(self.experiment_name) is not None:
            written = experiments.update(self.experiment_name, change)
            if replaced:
                self.experiment_freshness.wrote(replaced[0], written)
            return
        kind = resource.EXPERIMENT_KIND
        experiments.create(
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": {
                    "name": self.experiment_name,
                    "namespace": self.namespace,
                    "labels": self._side_labels(ROLE_EXPERIMENT),
                },
                "spec": spec,
            }
        )

    def traffic_status(self) -> TrafficStatus:
        """Weights and mirror as the Experiment reports them applied (`ExperimentReady`,
        `CandidatesReady`, `MirrorReady`); readiness of each Model from `ModelReady`."""
        self.check_status()
        challenger = self._challenger()
        experiment = self._applied_experiment()
        percent, mirrored = resource.applied_split(experiment, self.challenger_name)
        variants = [
            VariantStatus(
                name=CHAMPION,
                model_version=self.config.model_version,
                model_uri=self.config.model_uri,
                ready=self.status.state == ServiceState.ACTIVE,
                weight=100 - percent,
                last_error=self.status.last_error,
                metric_selector=seldon2_selector(self.name),
            )
        ]
        if challenger is not None:
            config = self.challenger_config()
            variants.append(
                VariantStatus(
                    name=CHALLENGER,
                    model_version=config.model_version if config else None,
                    model_uri=(challenger.get("spec") or {}).get("storageUri"),
                    ready=resource.is_true(challenger, "ModelReady"),
                    weight=percent,
                    last_error=resource.model_failure(challenger),
                    metric_selector=seldon2_selector(self.challenger_name),
                )
            )
        return TrafficStatus(
            variants=variants,
            mirror_to=CHALLENGER if mirrored else None,
            mirror_percent=mirrored,
        )

    @property
    def experiment_freshness(self) -> Freshness:
        if self._experiment_freshness is None:
            self._experiment_freshness = Freshness()
        return self._experiment_freshness

    def _applied_experiment(self) -> dict[str, Any] | None:
        """The Experiment, if its conditions describe its current spec; else None.

        The operator copies the scheduler's experiment events only for the current
        generation and writes no observedGeneration (operator/scheduler/experiment.go,
        SubscribeExperimentEvents), and restarting an experiment for a new spec makes it
        inactive first (scheduler/pkg/store/experiment/utils.go: `Active: false`), so, as for
        Seldon Core 1 Models, the first status that differs from the one our write replaced
        is current; the history since our write is replayed by a short watch."""
        freshness = self.experiment_freshness

        def judge(obj: dict[str, Any] | None, from_event: bool) -> dict[str, Any] | None:
            if obj is None:
                return {}
            if not from_event:
                freshness.begin_wait(obj)
            current = freshness.observed_generation(obj, from_event) >= generation(obj)
            return obj if current else None

        try:
            found = watch_until(
                self.experiments,
                self.experiment_name,
                judge,
                Deadline(REPLAY_SECONDS),
                start_from=freshness.start_version,
                on_gone=freshness.forget,
            )
        except (WatchTimeout, ModelServerNotFoundError):
            return None
        return found or None

    def promote_challenger(self) -> None:
        """The champion Model takes the challenger's spec; once Seldon has the new version
        available (it keeps the old one serving until then), the Experiment and the
        challenger go. Removing the Experiment earlier would hand the champion's requests
        back to the old version for the length of the load, so this waits for it, bounded:
        the challenger already loaded the same model, so the load is short."""
        config = self.challenger_config()
        if config is None:
            raise ModelDeployError(f"model server {self.uuid} has no challenger to promote")
        merged = config.model_copy(update={"name": self.config.name})
        self.update(merged)
        try:
            self.wait_until_ready(Deadline(PROMOTE_SECONDS))
        except ModelDeployError as exc:  # the old version serves until the new one loads
            logger.warning(
                "%s: the promoted model is not available yet (%s); removing the Experiment "
                "anyway, so the previous version answers until it is",
                self.where(),
                exc,
            )
        self._delete_experiment()
        self.resources.delete(self.challenger_name)

    def remove_challenger(self) -> None:
        """All traffic back to the champion (the Experiment goes first), then the challenger."""
        self._delete_experiment()
        if self._challenger() is not None:
            self.resources.delete(self.challenger_name)

    def _wait_gone(self, resources: CustomResources, name: str) -> None:
        """Until Seldon has released the object's finalizer: a Model once unloaded, an
        Experiment once the scheduler stopped it (operator/scheduler/experiment.go,
        SubscribeExperimentEvents: the finalizer goes on the inactive event)."""

        def judge(obj: dict[str, Any] | None, from_event: bool) -> bool | None:
            return True if obj is None else None

        try:
            watch_until(resources, name, judge, Deadline(GONE_SECONDS))
        except WatchTimeout:
            raise ConflictError(
                f"{resources.where(name)} is still being deleted after {GONE_SECONDS:g}s "
                "(Seldon's finalizer waits for the scheduler to unload or stop it); try again "
                "later"
            ) from None

    def _delete_experiment(self) -> None:
        experiments = self.experiments
        current = experiments.get(self.experiment_name)
        if current is None:
            return
        if not self._ours(current, ROLE_EXPERIMENT):
            raise ConflictError(
                f"{experiments.where(self.experiment_name)} is not modeldeploy's rollout of "
                f"model server {self.uuid}; leaving it alone"
            )
        experiments.delete(self.experiment_name)
        # traffic is back on the champion only once the scheduler stopped the Experiment
        self._wait_gone(experiments, self.experiment_name)

    def delete(self, force: bool = False) -> None:
        """The rollout objects beside the Model go with it."""
        try:
            self.remove_challenger()
        except ConflictError:
            if not force:
                raise
        super().delete(force)
