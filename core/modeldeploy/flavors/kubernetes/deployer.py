"""The deployer shared by the Kubernetes flavors: the engine's primitives over custom resources.

The continuous-deployment algorithm stays in `modeldeploy.deployer.ModelDeployer`; this class only
supplies listing (one label-selector query, paginated), creation (Secret first, then the
resource), validation before any write, and the lazily built API client.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid4

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import (
    DeployerSettings,
    ModelDeployer,
    PendingDeploy,
    ServerQuery,
    not_found,
)
from modeldeploy.errors import ConflictError, ModelDeployError, ModelServerNotFoundError
from modeldeploy.flavors.kubernetes.client import KubeClient, connect
from modeldeploy.flavors.kubernetes.config import KubernetesServiceConfig, check_model_uri
from modeldeploy.flavors.kubernetes.naming import equivalence_name, server_name
from modeldeploy.flavors.kubernetes.records import is_managed, query_selector, read_record
from modeldeploy.flavors.kubernetes.resources import CustomResources, ResourceKind
from modeldeploy.flavors.kubernetes.rollout_store import ConfigMapRolloutStore
from modeldeploy.flavors.kubernetes.secrets import SecretLayout, StorageSecrets
from modeldeploy.flavors.kubernetes.server import KubernetesModelServer
from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings
from modeldeploy.server import ModelServer
from modeldeploy.status import ServiceStatus, utcnow
from modeldeploy.waiting import Deadline

# Whether the deploy in progress replaces its equivalents (then the server gets the one name
# of its equivalence class) or adds a server beside them (a uuid-based name).
_REPLACING: contextvars.ContextVar[bool] = contextvars.ContextVar("replacing", default=True)
# How long a create waits for an equivalent server that is being deleted to be gone.
GONE_TIMEOUT = 60.0
MAX_CREATE_RACES = 5


class _EquivalentExists(Exception):
    """Another process created the server of this equivalence class first."""


if TYPE_CHECKING:
    from modeldeploy.flavors.kubernetes.aio import AsyncResources


class KubernetesModelDeployer(ModelDeployer):
    """Model servers as custom resources of one kind in one namespace."""

    settings_class: ClassVar[type[DeployerSettings]] = KubernetesDeployerSettings
    config_class: ClassVar[type[ServiceConfig]] = KubernetesServiceConfig
    server_class: ClassVar[type[KubernetesModelServer]]
    kind: ClassVar[ResourceKind]
    secret_layout: ClassVar[SecretLayout]
    uri_schemes: ClassVar[tuple[str, ...]] = ("s3", "gs", "https", "http", "pvc")

    settings: KubernetesDeployerSettings

    def __init__(self, settings: KubernetesDeployerSettings | dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._kube: KubeClient | None = None
        self._resources: CustomResources | None = None
        self._secrets: StorageSecrets | None = None
        self._aio: AsyncResources | None = None

    def location(self) -> str:
        kube = self.kube
        return f"namespace {kube.namespace} of cluster {kube.host or kube.source}"

    def scope(self) -> str:
        return self.namespace

    def rollout_store(self) -> ConfigMapRolloutStore:
        """Rollout states in the namespace, so any caller (a triggerer, another worker, the
        CLI elsewhere) advances, promotes or aborts the same rollout."""
        return ConfigMapRolloutStore(self.kube, self.flavor, owner_of=self.owner_reference)

    def owner_reference(self, server_uuid: str) -> dict[str, Any] | None:
        """The ownerReference of a model server's resource, so what belongs to the server
        (its rollout's ConfigMap) is garbage-collected with it; None when it is gone.

        Not `blockOwnerDeletion`: that would need permission to update the resource's
        finalizers under the OwnerReferencesPermissionEnforcement admission plugin."""
        try:
            server = self.get_model_server(server_uuid)
        except ModelServerNotFoundError:
            return None
        obj = server.obj if isinstance(server, KubernetesModelServer) else None
        meta = (obj or {}).get("metadata") or {}
        if not meta.get("uid"):
            return None
        return {
            "apiVersion": self.kind.api_version,
            "kind": self.kind.kind,
            "name": meta["name"],
            "uid": meta["uid"],
        }

    # --- lazily built plumbing (no cluster access until a task runs) ---------------------

    @property
    def kube(self) -> KubeClient:
        with self._lock:
            if self._kube is None:
                self._kube = connect(self.settings)
            return self._kube

    @property
    def namespace(self) -> str:
        """The configured namespace, else the kubeconfig context's, else `default`."""
        return self.kube.namespace

    @property
    def resources(self) -> CustomResources:
        if self._resources is None:
            self._resources = CustomResources(self.kube, self.kind, self.flavor)
        return self._resources

    @property
    def secrets(self) -> StorageSecrets:
        if self._secrets is None:
            self._secrets = StorageSecrets(
                self.kube,
                self.settings,
                self.flavor,
                self.secret_layout,
                users=lambda selector: self.resources.list(selector),
            )
        return self._secrets

    @property
    def aio(self) -> AsyncResources:
        """The async client for waits in an event loop (built on first use)."""
        if self._aio is None:
            from modeldeploy.flavors.kubernetes.aio import AsyncResources

            self._aio = AsyncResources(self.resources)
        return self._aio

    async def aclose(self) -> None:
        if self._aio is not None:
            aio, self._aio = self._aio, None
            await aio.aclose()
        self.close()

    async def get_model_server_async(self, uuid: UUID | str) -> KubernetesModelServer:
        """One label-selector list over async HTTP, like `get_model_server`."""
        from modeldeploy.flavors.kubernetes.watching_async import retrying

        query = ServerQuery(service_uuid=UUID(str(uuid)))
        selector = query_selector(query, self.flavor)
        found = await retrying(
            self.aio, lambda: self.aio.list(selector), f"listing {self.resources.where()}"
        )
        for obj in found:
            server = self.server_from(obj)
            if server is not None and query.matches(server):
                return server
        raise not_found(self.flavor, uuid, self.location())

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()
            self._kube = None
            self._resources = None
            self._secrets = None

    # --- engine primitives -------------------------------------------------------------

    def server_from(self, obj: dict[str, Any]) -> KubernetesModelServer | None:
        """Re-create a model server from its object on the cluster (None if not ours)."""
        record = read_record(obj, self.config_class)
        if record is None:
            return None
        return self.server_class(
            record.uuid,
            record.config,
            ServiceStatus(created_at=record.created_at),
            deployer=self,
            name=obj["metadata"]["name"],
            obj=obj,
        )

    def _list_servers(self, query: ServerQuery) -> Iterable[KubernetesModelServer]:
        for obj in self.resources.list(query_selector(query, self.flavor)):
            server = self.server_from(obj)
            if server is not None:
                yield server

    def validate_deploy(self, config: ServiceConfig) -> None:
        """Everything we can check without writing: URI scheme, names, flavor rules."""
        check_model_uri(config.model_uri, self.uri_schemes, self.flavor)
        self.validate_flavor(config)

    def validate_flavor(self, config: ServiceConfig) -> None:
        """Flavor rules (implementation, model format, protocol...)."""

    def secrets_configured(self) -> bool:
        return self.settings.storage_credentials is not None

    def _write_deploy(
        self, config: ServiceConfig, replace: bool
    ) -> tuple[PendingDeploy, ModelServer]:
        """Concurrent deploys of one (pipeline, step, model) converge on one server: the
        loser of the create race updates the winner's server in place instead."""
        token = _REPLACING.set(replace)
        try:
            for _ in range(MAX_CREATE_RACES):
                try:
                    return super()._write_deploy(config, replace)
                except _EquivalentExists:
                    continue
        finally:
            _REPLACING.reset(token)
        raise ConflictError(
            f"deploying {config.model_name}: its model server kept being created and deleted "
            "by other clients; try again"
        )

    def _server_name(self, config: ServiceConfig, uuid: UUID) -> str:
        given = getattr(config, "name", None)
        if given:
            return str(given)
        if _REPLACING.get():
            return equivalence_name(config.pipeline_name, config.step_name, config.model_name)
        return server_name(config.model_name, uuid)

    def _create_server(self, config: ServiceConfig) -> KubernetesModelServer:
        uuid = uuid4()
        name = self._server_name(config, uuid)
        secret = self.secrets.ensure()
        server = self.server_class(uuid, config, ServiceStatus(), deployer=self, name=name)
        body = server.build_object(config, secret, utcnow())
        server.mark(body, None)
        try:
            obj = self.resources.create(body)
        except ConflictError:
            self.release_secret(secret, leaving=name)
            self._settle_name_conflict(name, config)
            raise
        except ModelDeployError:
            self.release_secret(secret, leaving=name)
            raise
        # A concurrent delete of the last other user may have removed the Secret between
        # `ensure` and `create`; write it again so this server can read its model.
        if secret and self.secrets.managed and not self.secrets.exists(secret):
            self.secrets.ensure(server=name)
        server.absorb(obj)
        return server

    def _settle_name_conflict(self, name: str, config: ServiceConfig) -> None:
        """`name` exists: raise `_EquivalentExists` when it is (or was) an equivalent server
        of ours, so the deploy retries (updating it, or creating once it is gone)."""
        existing = self.resources.get(name)
        if existing is None:
            raise _EquivalentExists()  # deleted meanwhile: create again
        if not is_managed(existing, self.flavor):
            return
        record = read_record(existing, self.config_class)
        if record is None or (record.config.pipeline_name, record.config.step_name) != (
            config.pipeline_name,
            config.step_name,
        ):
            return
        if record.config.model_name != config.model_name:
            return
        if (existing.get("metadata") or {}).get("deletionTimestamp"):
            server = self.server_from(existing)
            if server is not None:
                server.wait_until_deleted(Deadline(GONE_TIMEOUT))
        raise _EquivalentExists()

    def release_secret(self, secret: str | None, leaving: str) -> bool:
        """Delete `secret` if it is ours and no model server but `leaving` uses it."""
        return self.secrets.release(secret, leaving=leaving)
