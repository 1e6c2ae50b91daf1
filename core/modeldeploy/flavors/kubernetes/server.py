"""A model server that is one custom resource; the Seldon and KServe servers subclass it.

The subclass says how a config becomes a spec (`build_spec`), how the platform's status
maps to a `ServiceState` (`observe`), and how stop is expressed (`stop_requested`,
`apply_stop`, `apply_start`). Everything else (writing with optimistic concurrency,
watch-based waiting for the generation we wrote, deletion with the storage Secret, pod logs)
is shared here.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from uuid import UUID

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import (
    DeploymentTimeoutError,
    InvalidConfigError,
    ModelServerNotFoundError,
)
from modeldeploy.flavors.kubernetes import logs as pod_logs
from modeldeploy.flavors.kubernetes.freshness import Freshness, mark_write, unmarked
from modeldeploy.flavors.kubernetes.naming import label_value
from modeldeploy.flavors.kubernetes.records import (
    ANNOTATION_CREATED,
    ANNOTATION_SECRET,
    LABEL_SECRET,
    LABEL_UUID,
    record_annotations,
    record_labels,
)
from modeldeploy.flavors.kubernetes.watching import WatchTimeout, watch_until
from modeldeploy.redaction import get_logger
from modeldeploy.server import ModelServer, TransitionCallback, WaitProgress
from modeldeploy.status import ServiceState, ServiceStatus, utcnow
from modeldeploy.waiting import Deadline

if TYPE_CHECKING:
    from modeldeploy.flavors.kubernetes.deployer import KubernetesModelDeployer
    from modeldeploy.flavors.kubernetes.resources import CustomResources

logger = get_logger("modeldeploy.kubernetes")


class Observation(NamedTuple):
    """What the platform's status says, for a status that reflects the current generation."""

    state: ServiceState
    error: str | None = None
    revision: str | None = None


class KubernetesModelServer(ModelServer):
    """One custom resource, found by its name in the deployer's namespace."""

    def __init__(
        self,
        uuid: UUID,
        config: ServiceConfig,
        status: ServiceStatus,
        *,
        deployer: KubernetesModelDeployer,
        name: str,
        obj: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(uuid, config, status)
        self.deployer = deployer
        self.name = name
        self.namespace = deployer.namespace
        self.obj = obj
        self.freshness = Freshness()
        if obj is not None:
            self.status = self.status_from(obj)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.namespace}/{self.name}, uuid={self.uuid}, "
            f"model={self.config.model_name!r}, state={self.status.state.value})"
        )

    # --- flavor hooks ------------------------------------------------------------------

    @abstractmethod
    def build_spec(self, config: ServiceConfig, secret: str | None) -> dict[str, Any]:
        """The resource's `spec` for `config`, in its running form."""

    @abstractmethod
    def observe(self, obj: dict[str, Any]) -> Observation:
        """Map the platform's status (already known to be current) to a state."""

    @abstractmethod
    def stop_requested(self, obj: dict[str, Any]) -> bool:
        """True when we asked the platform to stop serving this object."""

    @abstractmethod
    def apply_stop(self, obj: dict[str, Any]) -> None:
        """Change `obj` (a private copy) so the platform stops serving it."""

    @abstractmethod
    def apply_start(self, obj: dict[str, Any]) -> None:
        """Undo `apply_stop` on `obj` (a private copy)."""

    @abstractmethod
    def pod_selector(self) -> str:
        """Label selector of the pods serving this model."""

    @property
    def container_name(self) -> str | None:
        """Container whose log `logs()` reads (None: the pod's only container)."""
        return None

    #: seconds between re-reads while waiting, for platforms whose progress does not always
    #: show on the resource itself (pods, child Deployments); None: events only
    recheck_interval: ClassVar[float | None] = None

    def is_current(self, obj: dict[str, Any], from_event: bool) -> bool:
        """Does `obj`'s status describe our last write? Default: the history kept by
        `freshness` (the first status that differs from the one at our write)."""
        return self.freshness.observed_generation(obj, from_event) >= _generation(obj)

    def start_failure(self) -> str | None:
        """While starting: a reason the platform has not reported yet that the new model
        will not come up (pods, children); None if nothing is known to be wrong."""
        return None

    def rollout_pending(self) -> str | None:
        """When the platform says ready: what is still rolling out (None: nothing known)."""
        return None

    def mark(self, desired: dict[str, Any], replaced: dict[str, Any] | None) -> None:
        """Record on `desired` what a later reader needs to judge this write (any process)."""
        if replaced is not None:
            mark_write(desired, replaced)

    # --- the object --------------------------------------------------------------------

    @property
    def resources(self) -> CustomResources:
        return self.deployer.resources

    @property
    def secret_name(self) -> str | None:
        if self.obj is None:
            return None
        return ((self.obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SECRET)

    def build_object(
        self, config: ServiceConfig, secret: str | None, created_at: datetime
    ) -> dict[str, Any]:
        kind = self.deployer.kind
        labels = record_labels(config, self.uuid, self.flavor)
        annotations = record_annotations(config, created_at)
        if secret:
            labels[LABEL_SECRET] = label_value(secret)
            annotations[ANNOTATION_SECRET] = secret
        return {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": self.build_spec(config, secret),
        }

    def _rewrite(self, current: dict[str, Any], config: ServiceConfig, secret: str | None) -> None:
        """Put `config` into `current` (a private copy), keeping identity and foreign fields."""
        meta = current.setdefault("metadata", {})
        created = _created_at(current)
        desired = self.build_object(config, secret, created)
        labels = {
            k: v
            for k, v in (meta.get("labels") or {}).items()
            if not k.startswith("modeldeploy.io/")
        }
        labels.update(desired["metadata"]["labels"])
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if not k.startswith("modeldeploy.io/")
        }
        annotations.update(desired["metadata"]["annotations"])
        meta["labels"] = labels
        meta["annotations"] = annotations
        current["spec"] = desired["spec"]

    # --- status ------------------------------------------------------------------------

    def status_from(self, obj: dict[str, Any], from_event: bool = False) -> ServiceStatus:
        meta = obj.get("metadata") or {}
        generation = _generation(obj)
        current = self.is_current(obj, from_event)
        observed_generation = generation if current else generation - 1
        stopping = self.stop_requested(obj)
        if meta.get("deletionTimestamp"):
            seen = Observation(ServiceState.PENDING_SHUTDOWN)
        elif not current:
            seen = Observation(
                ServiceState.PENDING_SHUTDOWN if stopping else ServiceState.PENDING_STARTUP
            )
        else:
            seen = self.observe(obj)
        previous = self.status
        return ServiceStatus(
            state=seen.state,
            last_error=seen.error,
            generation=generation,
            observed_generation=observed_generation,
            revision=seen.revision,
            created_at=_created_at(obj),
            updated_at=utcnow() if seen.state != previous.state else previous.updated_at,
        )

    def where(self) -> str:
        return f"{self.resources.where(self.name)}, model {self.config.model_name}"

    def absorb(self, obj: dict[str, Any], from_event: bool = False) -> ServiceStatus:
        """Remember `obj` as the latest version and recompute the status from it."""
        self.obj = obj
        self.status = self.status_from(obj, from_event)
        return self.status

    def check_status(self) -> ServiceStatus:
        obj = self.resources.get(self.name)
        if obj is None:
            self.status = self.status.model_copy(
                update={
                    "state": ServiceState.INACTIVE,
                    "last_error": f"{self.resources.where(self.name)} no longer exists",
                    "updated_at": utcnow(),
                }
            )
            return self.status
        return self.absorb(obj)

    # --- verbs -------------------------------------------------------------------------

    def _write(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply `change` to the current object with optimistic concurrency; no-op if unchanged.

        Each write records the version it replaced (see `freshness`), so any process can
        tell the status of the previous generation from the status of this one.
        """
        replaced: list[dict[str, Any]] = []

        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            self._check_identity(current)
            before = copy.deepcopy(current)
            change(current)
            if unmarked(current) == unmarked(before):
                return None
            self.mark(current, before)
            replaced[:] = [before]
            return current

        obj = self.resources.update(self.name, mutate)
        if replaced:
            self.freshness.wrote(replaced[0], obj)
        self.absorb(obj)
        return obj

    def update(self, config: ServiceConfig) -> None:
        """Write `config` in place (same name, uuid and URL); a stopped server is started."""
        config = self.deployer.parse_config(config)
        self.deployer.validate_deploy(config)
        secret = self.deployer.secrets.ensure(server=self.name)
        before = self.secret_name

        def change(current: dict[str, Any]) -> None:
            self._rewrite(current, config, secret)
            self.apply_start(current)

        self._write(change)
        self.config = config
        if before and before != secret:
            self.deployer.release_secret(before, leaving="")

    def start(self) -> None:
        self.deployer.secrets.ensure(server=self.name)
        self._write(self.apply_start)

    def stop(self, force: bool = False) -> None:
        self._write(self.apply_stop)

    def delete(self, force: bool = False) -> None:
        """Delete the resource, then the storage Secret if no other model server uses it."""
        secret = self.secret_name
        if self.obj is None or secret is None:
            current = self.resources.get_managed(self.name)
            if current is not None:
                self._check_identity(current)
                self.obj = current
                secret = self.secret_name
        gone = not self.resources.delete(self.name)
        if gone and not force:
            logger.info("%s was already deleted", self.resources.where(self.name))
        self.deployer.release_secret(secret, leaving=self.name)

    def is_deleted(self) -> bool:
        return self.resources.get(self.name) is None

    def _check_identity(self, current: dict[str, Any]) -> None:
        have = ((current.get("metadata") or {}).get("labels") or {}).get(LABEL_UUID)
        if have != str(self.uuid):
            raise ModelServerNotFoundError(
                f"{self.resources.where(self.name)} now belongs to model server {have}, not "
                f"{self.uuid}; the server was deleted and re-created by someone else"
            )

    # --- waiting -----------------------------------------------------------------------

    def wait_for_state(
        self,
        target: ServiceState,
        deadline: Deadline,
        on_transition: TransitionCallback | None = None,
    ) -> ServiceStatus:
        """Watch until the platform reports `target` for the generation we wrote.

        A terminal failure of the current generation is raised at once with the platform's
        own message; the deadline holds even if no event ever arrives.
        """
        progress = WaitProgress(self, target, on_transition)
        try:
            return watch_until(
                self.resources,
                self.name,
                self._state_judge(progress),
                deadline,
                start_from=self.freshness.start_version,
                on_gone=self.freshness.forget,
                recheck=self.recheck_interval,
            )
        except WatchTimeout:
            raise progress.timeout(deadline) from None

    def _second_opinion(self, status: ServiceStatus) -> ServiceStatus:
        """While starting, what the pods and Deployments say beyond the resource's status."""
        if status.state == ServiceState.PENDING_STARTUP:
            reason = self.start_failure()
            if reason:
                status = status.model_copy(
                    update={"state": ServiceState.ERROR, "last_error": reason}
                )
        elif status.state == ServiceState.ACTIVE:
            waiting = self.rollout_pending()
            if waiting:
                logger.debug("%s: ready by its status, but %s", self.where(), waiting)
                status = status.model_copy(update={"state": ServiceState.PENDING_STARTUP})
        self.status = status
        return status

    async def wait_for_state_async(
        self,
        target: ServiceState,
        deadline: Deadline,
        on_transition: TransitionCallback | None = None,
    ) -> ServiceStatus:
        """`wait_for_state` over async HTTP: same judge, no thread held while waiting."""
        from modeldeploy.flavors.kubernetes.watching_async import watch_until_async

        progress = WaitProgress(self, target, on_transition)
        try:
            return await watch_until_async(
                self.deployer.aio,
                self.name,
                self._state_judge(progress),
                deadline,
                start_from=self.freshness.start_version,
                on_gone=self.freshness.forget,
                recheck=self.recheck_for,
            )
        except WatchTimeout:
            raise progress.timeout(deadline) from None

    def recheck_for(self, obj: dict[str, Any] | None) -> float | None:
        """How often a wait re-reads `obj` for progress shown elsewhere (pods, a child
        Deployment); None: its events say all. Flavors narrow it by the object's mode."""
        return self.recheck_interval

    def _state_judge(
        self, progress: WaitProgress
    ) -> Callable[[dict[str, Any] | None, bool], ServiceStatus | None]:
        """Judge one version of the object (None: deleted) for a wait; pure but for memory."""

        def judge(obj: dict[str, Any] | None, from_event: bool) -> ServiceStatus | None:
            if obj is None:
                raise ModelServerNotFoundError(
                    f"{self.flavor} model server {self.uuid} ({self.where()}) was deleted "
                    f"while waiting for it to become {progress.target.value}"
                )
            if not from_event:
                self.freshness.begin_wait(obj)
            status = self.absorb(obj, from_event)
            if progress.target == ServiceState.ACTIVE and status.is_current:
                status = self._second_opinion(status)
            return progress.judge(status)

        return judge

    def wait_until_deleted(self, deadline: Deadline) -> None:
        def judge(obj: dict[str, Any] | None, from_event: bool) -> bool | None:
            return True if obj is None else None

        try:
            watch_until(self.resources, self.name, judge, deadline)
        except WatchTimeout:
            raise DeploymentTimeoutError(
                f"{self.flavor} model server {self.uuid} ({self.resources.where(self.name)}) was "
                f"not gone after {deadline.timeout:g}s; a finalizer may be holding it. Check "
                f"`kubectl get {self.deployer.kind.plural} {self.name} -n {self.namespace} -o yaml`"
            ) from None

    # --- logs --------------------------------------------------------------------------

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        if tail is not None and tail < 0:
            raise InvalidConfigError(f"tail must be zero or more lines, got {tail}")
        return pod_logs.read(
            self.deployer.kube,
            self.pod_selector(),
            container=self.container_name,
            follow=follow,
            tail=tail,
        )


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _created_at(obj: dict[str, Any]) -> datetime:
    from modeldeploy.flavors.kubernetes.records import _parse_time

    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        _parse_time(annotations.get(ANNOTATION_CREATED))
        or _parse_time(meta.get("creationTimestamp"))
        or utcnow()
    )
