"""The abstract deployer and the continuous-deployment algorithm, written once for every flavor."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from modeldeploy.config import ServiceConfig, parse_config
from modeldeploy.crashpoints import crash_point
from modeldeploy.errors import InvalidConfigError, ModelDeployError, ModelServerNotFoundError
from modeldeploy.redaction import get_logger, redact
from modeldeploy.server import ModelServer, ModelServerInfo, TransitionCallback
from modeldeploy.settings import DeployerSettings as DeployerSettings
from modeldeploy.settings import validate_settings
from modeldeploy.status import ServiceState
from modeldeploy.traffic import Capability, MetricQueries
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline, check_timeout, within

logger = get_logger("modeldeploy")

DeployAction = Literal["created", "updated"]
RESTORE_TIMEOUT = 30.0


class ServerQuery(BaseModel):
    """Filters of `find_model_server`; flavors push what they can down to the platform."""

    model_config = ConfigDict(protected_namespaces=())

    running: bool = False
    service_uuid: UUID | None = None
    pipeline_name: str | None = None
    run_id: str | None = None
    pipeline_step_name: str | None = None
    model_name: str | None = None
    model_uri: str | None = None
    model_type: str | None = None

    def matches(self, server: ModelServer) -> bool:
        c = server.config
        wanted: list[tuple[object, object]] = [
            (self.service_uuid, server.uuid),
            (self.pipeline_name, c.pipeline_name),
            (self.run_id, c.run_id),
            (self.pipeline_step_name, c.step_name),
            (self.model_name, c.model_name),
            (self.model_uri, c.model_uri),
            (self.model_type, c.model_type),
        ]
        if any(want is not None and want != have for want, have in wanted):
            return False
        return not self.running or server.is_running


class DeployResult(BaseModel):
    """What a deploy did, for logs and task output."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    action: DeployAction
    server: ModelServer
    retired: list[str] = []
    previous_config: dict[str, Any] | None = None


class PendingDeploy(BaseModel):
    """A deploy written but not yet waited for; JSON-ready so another process can finish it."""

    action: DeployAction
    server_uuid: str
    previous_config: dict[str, Any] | None = None
    retire: list[str] = []


class ModelDeployer(ABC):
    """Creates, finds and manages the model servers of one flavor.

    Subclasses supply the platform primitives (`_list_servers`, `_create_server`,
    `validate_deploy`); the rollout itself lives here so every flavor behaves the same.
    """

    flavor: ClassVar[str] = ""
    config_class: ClassVar[type[ServiceConfig]] = ServiceConfig
    settings_class: ClassVar[type[DeployerSettings]] = DeployerSettings
    #: what the platform can do beyond in-place updates (see `modeldeploy.traffic`)
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: why the platform lacks a capability, said when a strategy needing it is refused
    why_not: ClassVar[Mapping[Capability, str]] = {}
    #: where the analysis of a progressive rollout reads per-variant request figures
    #: (`modeldeploy.progressive.queries`); None: the flavor exports none. An instance may
    #: set its own (e.g. from its settings).
    metric_queries: MetricQueries | None = None

    def __init__(self, settings: DeployerSettings | dict[str, Any] | None = None) -> None:
        if settings is None:
            settings = {}
        if isinstance(settings, dict):
            settings = validate_settings(self.settings_class, settings, self.flavor)
        self.settings = settings

    @property
    def tracking_uri(self) -> str | None:
        """The MLflow tracking server and registry this deployer's models live in; None
        means the engine's default. Flavors with a registry of their own override it."""
        return self.settings.tracking_uri

    def __repr__(self) -> str:
        return redact(f"{type(self).__name__}({self.settings!r})")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections to the platform; flavors with clients override it."""

    def location(self) -> str:
        """Where this deployer looks for servers, for "nothing found" messages (a state
        directory, a cluster and namespace); flavors override it."""
        return f"the {self.flavor} flavor's default location"

    def scope(self) -> str:
        """The namespace (or home) servers live in, for a model's deployment identity
        (`modeldeploy.records`); flavors override it."""
        return "default"

    async def aclose(self) -> None:
        """`close` for an event loop; flavors with async clients override it."""
        self.close()

    async def get_model_server_async(self, uuid: UUID | str) -> ModelServer:
        """`get_model_server` without blocking the loop; the default borrows a pool thread
        for the one lookup only. Flavors with an async client override it."""
        import asyncio

        return await asyncio.to_thread(self.get_model_server, uuid)

    def __enter__(self) -> ModelDeployer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- platform primitives -------------------------------------------------------------

    @abstractmethod
    def _list_servers(self, query: ServerQuery) -> Iterable[ModelServer]:
        """Servers we manage that may match `query`; may return extra ones, never fewer."""

    @abstractmethod
    def _create_server(self, config: ServiceConfig) -> ModelServer:
        """Write a new server to the platform and return without waiting."""

    def validate_deploy(self, config: ServiceConfig) -> None:  # noqa: B027 - optional hook
        """Refuse a config the platform would reject (missing model, port in use...)."""

    def _deploy_lock(self, config: ServiceConfig) -> contextlib.AbstractContextManager[Any]:
        """Serialise concurrent deploys of equivalent servers where the platform cannot."""
        return contextlib.nullcontext()

    # --- ZenML-compatible surface -------------------------------------------------------

    def parse_config(self, config: ServiceConfig | dict[str, Any]) -> ServiceConfig:
        return parse_config(self.config_class, config)

    def deploy_model(
        self,
        config: ServiceConfig | dict[str, Any],
        replace: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        on_transition: TransitionCallback | None = None,
    ) -> ModelServer:
        return self.deploy(config, replace, timeout, on_transition).server

    def deploy(
        self,
        config: ServiceConfig | dict[str, Any],
        replace: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        on_transition: TransitionCallback | None = None,
    ) -> DeployResult:
        """Continuous deployment: update the newest equivalent server in place, or create one.

        Every input is checked before anything is written. An in-place update that does
        not become ready is reverted so the previous model keeps serving; a new server that
        never becomes ready is removed so nothing is left behind.
        """
        deadline = Deadline(check_timeout(timeout))
        config = self.parse_config(config)
        with within(deadline):
            self.validate_deploy(config)
            with self._deploy_lock(config):
                pending, server = self._write_deploy(config, replace)
                crash_point("written")
                return self._finish_deploy(pending, server, deadline, on_transition)

    def begin_deploy(
        self, config: ServiceConfig | dict[str, Any], replace: bool = True
    ) -> PendingDeploy:
        """First half of `deploy`: check, then write the change and return without waiting.

        For callers that wait elsewhere (an Airflow trigger): hand the JSON-ready result to
        `finish_deploy`, possibly in another process, which waits, reverts on failure and
        retires the older equivalents exactly as `deploy` does.
        """
        config = self.parse_config(config)
        self.validate_deploy(config)
        with self._deploy_lock(config):
            return self._write_deploy(config, replace)[0]

    def finish_deploy(
        self,
        pending: PendingDeploy | dict[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
        on_transition: TransitionCallback | None = None,
    ) -> DeployResult:
        """Second half of `deploy`: wait until ready, else restore or remove; then retire."""
        deadline = Deadline(check_timeout(timeout))
        pending = PendingDeploy.model_validate(pending)
        with within(deadline):
            server = self.get_model_server(pending.server_uuid)
            return self._finish_deploy(pending, server, deadline, on_transition)

    def _write_deploy(
        self, config: ServiceConfig, replace: bool
    ) -> tuple[PendingDeploy, ModelServer]:
        equivalent = self.find_model_server(
            pipeline_name=config.pipeline_name,
            pipeline_step_name=config.step_name,
            model_name=config.model_name,
        )
        if replace and equivalent:
            newest, *older = equivalent
            previous = newest.config
            logger.info("updating %s model server %s in place", self.flavor, newest.uuid)
            newest.update(config)
            if newest.status.state == ServiceState.INACTIVE:
                newest.start()
            pending = PendingDeploy(
                action="updated",
                server_uuid=str(newest.uuid),
                previous_config=previous.to_record(),
                retire=[str(s.uuid) for s in older],
            )
            return pending, newest
        server = self._create_server(config)
        logger.info("created %s model server %s", self.flavor, server.uuid)
        return PendingDeploy(action="created", server_uuid=str(server.uuid)), server

    def _finish_deploy(
        self,
        pending: PendingDeploy,
        server: ModelServer,
        deadline: Deadline,
        on_transition: TransitionCallback | None,
    ) -> DeployResult:
        try:
            server.wait_until_ready(deadline, on_transition)
        except ModelDeployError:
            if pending.action == "created":
                self._discard(server)
            elif pending.previous_config is not None:
                logger.warning("rollout of %s failed; restoring the previous model", server.uuid)
                # The previous model never stopped serving (the platform keeps the old
                # revision until the new one is ready), so confirming the revert is quick;
                # bound it so a failing deploy does not take twice its timeout.
                restore = Deadline(RESTORE_TIMEOUT)
                with contextlib.suppress(ModelDeployError), within(restore, override=True):
                    server.update(self.parse_config(pending.previous_config))
                    server.wait_until_ready(restore)
            raise
        for uuid in pending.retire:
            for older in self.find_model_server(service_uuid=uuid):
                logger.info("retiring equivalent model server %s", older.uuid)
                self._delete(older, deadline, force=True)
        return DeployResult(
            action=pending.action,
            server=server,
            retired=pending.retire,
            previous_config=pending.previous_config,
        )

    def _discard(self, server: ModelServer) -> None:
        budget = Deadline(RESTORE_TIMEOUT)
        with contextlib.suppress(ModelDeployError), within(budget, override=True):
            server.delete(force=True)
            server.wait_until_deleted(budget)

    def _delete(self, server: ModelServer, deadline: Deadline, force: bool) -> None:
        server.delete(force=force)
        server.wait_until_deleted(deadline)

    def find_model_server(
        self,
        running: bool = False,
        service_uuid: UUID | str | None = None,
        pipeline_name: str | None = None,
        run_id: str | None = None,
        pipeline_step_name: str | None = None,
        model_name: str | None = None,
        model_uri: str | None = None,
        model_type: str | None = None,
    ) -> list[ModelServer]:
        """Servers matching every filter given, newest first."""
        query = ServerQuery(
            running=running,
            service_uuid=_as_uuid(service_uuid) if service_uuid is not None else None,
            pipeline_name=pipeline_name,
            run_id=run_id,
            pipeline_step_name=pipeline_step_name,
            model_name=model_name,
            model_uri=model_uri,
            model_type=model_type,
        )
        found = [s for s in self._list_servers(query) if query.matches(s)]
        found.sort(key=lambda s: s.status.created_at, reverse=True)
        return found

    def get_model_server(self, uuid: UUID | str) -> ModelServer:
        found = self.find_model_server(service_uuid=uuid)
        if not found:
            raise not_found(self.flavor, uuid, self.location())
        return found[0]

    def start_model_server(
        self,
        uuid: UUID | str,
        timeout: float = DEFAULT_TIMEOUT,
        on_transition: TransitionCallback | None = None,
        wait: bool = True,
    ) -> ModelServer:
        """Start a stopped server (a no-op if it serves); `wait=False` leaves the waiting
        to the caller, e.g. an Airflow trigger."""
        deadline = Deadline(check_timeout(timeout))
        with within(deadline):
            server = self.get_model_server(uuid)
            if not server.is_running:
                server.start()
            if wait:
                server.wait_until_ready(deadline, on_transition)
        return server

    def stop_model_server(
        self,
        uuid: UUID | str,
        timeout: float = DEFAULT_TIMEOUT,
        force: bool = False,
        on_transition: TransitionCallback | None = None,
        wait: bool = True,
    ) -> ModelServer:
        deadline = Deadline(check_timeout(timeout))
        with within(deadline):
            server = self.get_model_server(uuid)
            server.stop(force=force)
            if wait:
                server.wait_for_state(ServiceState.INACTIVE, deadline, on_transition)
        return server

    def delete_model_server(
        self, uuid: UUID | str, timeout: float = DEFAULT_TIMEOUT, force: bool = False
    ) -> None:
        deadline = Deadline(check_timeout(timeout))
        with within(deadline):
            self._delete(self.get_model_server(uuid), deadline, force)

    def get_model_server_info(self, uuid: UUID | str) -> ModelServerInfo:
        return self.get_model_server(uuid).info()

    def get_model_server_logs(
        self, uuid: UUID | str, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]:
        if tail is not None and tail < 0:
            raise InvalidConfigError(f"tail must be zero or more lines, got {tail}")
        return self.get_model_server(uuid).logs(follow=follow, tail=tail)

    def ensure_serving(
        self,
        config: ServiceConfig | dict[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
        on_transition: TransitionCallback | None = None,
    ) -> tuple[ModelServer | None, bool]:
        """After a negative gate decision: keep the last server, restarting it if it is down.

        Returns the server (None when there is none) and whether it had to be restarted.
        """
        deadline = Deadline(check_timeout(timeout))
        config = self.parse_config(config)
        found = self.find_model_server(
            pipeline_name=config.pipeline_name,
            pipeline_step_name=config.step_name,
            model_name=config.model_name,
        )
        if not found:
            return None, False
        server = found[0]
        if server.is_running:
            return server, False
        logger.info(
            "restarting model server %s, which was %s", server.uuid, server.status.state.value
        )
        server.start()
        server.wait_until_ready(deadline, on_transition)
        return server, True


def not_found(flavor: str, uuid: UUID | str, location: str) -> ModelServerNotFoundError:
    """The error for a uuid no server of `flavor` has, saying where it was looked for."""
    return ModelServerNotFoundError(
        f"no {flavor} model server with uuid {uuid} in {location}; "
        "list them with `modeldeploy models list`"
    )


def _as_uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidConfigError(
            f"{value!r} is not a model server uuid; copy one from `modeldeploy models list`"
        ) from None
