"""Hooks: turn an Airflow connection into a core deployer and the MLflow model registry.

One connection type per flavor (`modeldeploy_mlflow`, `modeldeploy_seldon`,
`modeldeploy_kserve`); the form fields are declared in `get_provider_info`. Operators use
`ModelDeployHook`, which reads the connection's type to pick the flavor, so one operator
works with any of them. Nothing here touches `os.environ`; heavy libraries load in the
methods that need them.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
from modeldeploy.flavors import DEFAULT_FLAVOR  # imports nothing heavy

from modeldeploy_provider._values import as_bool

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry

DEFAULT_CONN_ID = "modeldeploy_default"

#: connection type -> engine flavor
FLAVOR_OF_CONN_TYPE: dict[str, str] = {
    "modeldeploy_mlflow": "mlflow",
    "modeldeploy_seldon": "seldon",
    "modeldeploy_kserve": "kserve",
}

_KUBERNETES_SETTINGS = (
    "namespace",
    "context",
    "kubeconfig_path",
    "ingress_base_url",
    "secret_name",
)

_SECRET_FIELDS = (
    "kubeconfig_secret",
    "gcs_service_account_json",
    "azure_storage_access_key",
    "azure_client_secret",
)


class ModelDeployConnectionError(AirflowException):
    """The connection is missing, of the wrong type or malformed; the message says which."""


class ModelDeployHook(BaseHook):
    """Builds the engine's deployer for a `modeldeploy_*` connection.

    :param modeldeploy_conn_id: connection of type `modeldeploy_mlflow`,
        `modeldeploy_seldon` or `modeldeploy_kserve`. The default id,
        `modeldeploy_default`, may be left undefined: it then means the embedded default,
        a local MLflow scoring server with state in `$MODELDEPLOY_HOME`.
    """

    conn_name_attr = "modeldeploy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "modeldeploy_mlflow"
    hook_name = "modeldeploy"
    #: connection types this hook accepts; the flavor hooks below accept only their own
    accepted_conn_types: ClassVar[tuple[str, ...]] = tuple(FLAVOR_OF_CONN_TYPE)

    def __init__(self, modeldeploy_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modeldeploy_conn_id = modeldeploy_conn_id

    # --- connection -> settings -------------------------------------------------------

    @cached_property
    def connection(self) -> Connection | None:
        """The connection, or None for the undefined default (the embedded default)."""
        try:
            conn = self.get_connection(self.modeldeploy_conn_id)
        except AirflowNotFoundException:
            return self._missing()
        self._check_type(conn)
        return conn

    async def aget_connection_settings(self) -> tuple[str, dict[str, Any]]:
        """`(flavor, settings)` read with the async connection API (for triggers)."""
        conn: Connection | None
        try:
            conn = await self.aget_connection(self.modeldeploy_conn_id)
        except AirflowNotFoundException:
            conn = self._missing()
        if conn is not None:
            self._check_type(conn)
        self.__dict__["connection"] = conn
        return self.flavor, self.settings

    def _missing(self) -> Connection | None:
        if self.modeldeploy_conn_id == DEFAULT_CONN_ID:
            self.log.info(
                "connection %s is not defined; using the embedded default (local MLflow)",
                DEFAULT_CONN_ID,
            )
            return None
        kinds = ", ".join(self.accepted_conn_types)
        raise ModelDeployConnectionError(
            f"modeldeploy connection {self.modeldeploy_conn_id!r} is not defined: create it "
            f"in Admin > Connections with type {kinds}, or set "
            f"AIRFLOW_CONN_{self.modeldeploy_conn_id.upper()}"
        )

    def _check_type(self, conn: Connection) -> None:
        if conn.conn_type not in self.accepted_conn_types:
            raise ModelDeployConnectionError(
                f"connection {conn.conn_id!r} has type {conn.conn_type!r}, but "
                f"{type(self).__name__} needs one of {', '.join(self.accepted_conn_types)}"
            )

    @property
    def flavor(self) -> str:
        conn = self.connection
        return DEFAULT_FLAVOR if conn is None else FLAVOR_OF_CONN_TYPE[conn.conn_type or ""]

    @cached_property
    def extras(self) -> dict[str, Any]:
        """The connection's extra fields; a malformed extra is an error, not an empty dict."""
        conn = self.connection
        if conn is None or not conn.extra:
            return {}
        try:
            extra = json.loads(conn.extra)
        except json.JSONDecodeError as exc:
            raise ModelDeployConnectionError(
                f"connection {conn.conn_id!r}: the extra field is not valid JSON ({exc.msg} at "
                f"position {exc.pos}); edit it in Admin > Connections"
            ) from None
        if not isinstance(extra, dict):
            raise ModelDeployConnectionError(
                f"connection {conn.conn_id!r}: the extra field must be a JSON object, "
                f"got {type(extra).__name__}"
            )
        prefix = f"extra__{conn.conn_type}__"
        # the Airflow 2 form stored prefixed keys; accept both spellings
        return {
            key.removeprefix(prefix): value
            for key, value in extra.items()
            if value is not None and value != ""
        }

    @property
    def settings(self) -> dict[str, Any]:
        """Deployer settings for the engine (may hold secrets: never log or XCom them)."""
        if self.flavor == "mlflow":
            return {k: self.extras[k] for k in ("home", "tracking_uri") if k in self.extras}
        return self._kubernetes_settings()

    def _kubernetes_settings(self) -> dict[str, Any]:
        from airflow.sdk.log import mask_secret

        conn, extras = self.connection, self.extras
        assert conn is not None
        settings: dict[str, Any] = {k: extras[k] for k in _KUBERNETES_SETTINGS if k in extras}
        if "in_cluster" in extras:
            settings["in_cluster"] = as_bool(
                extras["in_cluster"], f"connection {conn.conn_id!r}: in_cluster"
            )
        for name in _SECRET_FIELDS:  # keep them out of task logs whatever their key
            if name in extras:
                mask_secret(extras[name])
        if "kubeconfig_secret" in extras:
            settings["kubeconfig"] = extras["kubeconfig_secret"]  # YAML or JSON: core parses
        credentials = _storage_credentials(conn, extras)
        if credentials is not None:
            settings["storage_credentials"] = credentials
        return settings

    # --- engine objects -----------------------------------------------------------------

    def get_conn(self) -> ModelDeployer:
        """The engine's deployer for this connection (Airflow's name for the client)."""
        return self.get_deployer()

    def get_deployer(self) -> ModelDeployer:
        from modeldeploy.errors import InvalidConfigError
        from modeldeploy.flavors import create_deployer

        try:
            return create_deployer(self.flavor, self.settings)
        except InvalidConfigError as exc:
            raise ModelDeployConnectionError(
                f"connection {self.modeldeploy_conn_id!r}: {exc}"
            ) from None

    def get_registry(self, deployer: ModelDeployer | None = None) -> ModelRegistry:
        """The MLflow registry for candidates and the champion alias.

        Its URI is the connection's tracking URI; for the local flavor, else its own
        store (so the registry sits beside its servers); else the engine's default.
        """
        from modeldeploy.registry import ModelRegistry

        uri = self.extras.get("tracking_uri")
        if uri is None and self.flavor == "mlflow":
            uri = getattr(deployer or self.get_deployer(), "tracking_uri", None)
        return ModelRegistry(uri)

    def test_connection(self) -> tuple[bool, str]:
        """Build the deployer and list its model servers (Airflow's "Test" button)."""
        try:
            with self.get_deployer() as deployer:
                servers = deployer.find_model_server()
        except Exception as exc:  # the UI shows the message; never raise from here
            return False, f"{type(exc).__name__}: {exc}"
        running = sum(1 for s in servers if s.is_running)
        return True, (
            f"{deployer.flavor} deployer is reachable: {len(servers)} model server(s), "
            f"{running} running"
        )


class MLflowDeployHook(ModelDeployHook):
    """Local MLflow scoring servers (the embedded default); no cluster needed."""

    default_conn_name = "modeldeploy_mlflow_default"
    conn_type = "modeldeploy_mlflow"
    hook_name = "modeldeploy: local MLflow server"
    accepted_conn_types = ("modeldeploy_mlflow",)


class SeldonDeployHook(ModelDeployHook):
    """Seldon Core `SeldonDeployment`s on Kubernetes."""

    default_conn_name = "modeldeploy_seldon_default"
    conn_type = "modeldeploy_seldon"
    hook_name = "modeldeploy: Seldon Core"
    accepted_conn_types = ("modeldeploy_seldon",)


class KServeDeployHook(ModelDeployHook):
    """KServe `InferenceService`s on Kubernetes."""

    default_conn_name = "modeldeploy_kserve_default"
    conn_type = "modeldeploy_kserve"
    hook_name = "modeldeploy: KServe"
    accepted_conn_types = ("modeldeploy_kserve",)


def _storage_credentials(conn: Connection, extras: dict[str, Any]) -> dict[str, Any] | None:
    """The engine's `storage_credentials` from the form's fields (S3 keys in login/password)."""
    kind = extras.get("storage_type") or ("s3" if conn.login or conn.password else None)
    if not kind:
        return None
    if kind == "s3":
        creds = {
            "access_key_id": conn.login,
            "secret_access_key": conn.password,
            "endpoint": extras.get("s3_endpoint"),
            "region": extras.get("s3_region"),
        }
        if "s3_verify_ssl" in extras:
            creds["verify_ssl"] = as_bool(
                extras["s3_verify_ssl"], f"connection {conn.conn_id!r}: s3_verify_ssl"
            )
    elif kind == "gcs":
        creds = {"service_account_json": extras.get("gcs_service_account_json")}
    elif kind == "azure":
        creds = {
            "account_name": extras.get("azure_account_name"),
            "account_key": extras.get("azure_storage_access_key"),
            "client_id": extras.get("azure_client_id"),
            "client_secret": extras.get("azure_client_secret"),
            "tenant_id": extras.get("azure_tenant_id"),
            "subscription_id": extras.get("azure_subscription_id"),
        }
    else:
        raise ModelDeployConnectionError(
            f"connection {conn.conn_id!r}: storage_type must be s3, gcs or azure, got {kind!r}"
        )
    return {"type": kind, **{k: v for k, v in creds.items() if v not in (None, "")}}
