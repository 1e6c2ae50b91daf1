"""The hook: turn an Airflow connection into the engine's deployer and model registry.

One connection type per installed flavor, `modeldeploy_<flavor>`, declared in
`get_provider_info` from the flavor's settings model; this one hook serves them all. The
connection's type names the flavor, its extra fields are the flavor's settings, and the
engine turns their text into values (`modeldeploy.settings`). Nothing here touches
`os.environ`; heavy libraries load in the methods that need them.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
from modeldeploy.flavors import DEFAULT_FLAVOR  # imports nothing heavy

from modeldeploy_provider import mask_in_task_logs
from modeldeploy_provider.connection_types import CONN_TYPE_PREFIX, conn_type_of, flavor_of

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.settings import DeployerSettings

DEFAULT_CONN_ID = "modeldeploy_default"


class ModelDeployConnectionError(AirflowException):
    """The connection is missing, of the wrong type or malformed; the message says which."""


class ModelDeployHook(BaseHook):
    """Builds the engine's deployer for a `modeldeploy_<flavor>` connection.

    :param modeldeploy_conn_id: a connection of type `modeldeploy_<flavor>` for any
        installed flavor. The default id, `modeldeploy_default`, may be left undefined: it
        then means the engine's default flavor with its default settings.
    """

    conn_name_attr = "modeldeploy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = conn_type_of(DEFAULT_FLAVOR)
    hook_name = "modeldeploy"

    def __init__(self, modeldeploy_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.modeldeploy_conn_id = modeldeploy_conn_id

    # --- connection -> settings -------------------------------------------------------

    @cached_property
    def connection(self) -> Connection | None:
        """The connection, or None for the undefined default (the engine's default)."""
        try:
            conn = self.get_connection(self.modeldeploy_conn_id)
        except AirflowNotFoundException:
            return self._missing()
        self._check_type(conn)
        return conn

    async def aget_connection_settings(self) -> tuple[str, DeployerSettings]:
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

    @staticmethod
    def _installed_types() -> str:
        from modeldeploy.flavors import available_flavors

        return ", ".join(conn_type_of(f) for f in available_flavors()) or "none installed"

    def _missing(self) -> Connection | None:
        if self.modeldeploy_conn_id == DEFAULT_CONN_ID:
            self.log.info(
                "connection %s is not defined; using the default flavor (%s)",
                DEFAULT_CONN_ID,
                DEFAULT_FLAVOR,
            )
            return None
        raise ModelDeployConnectionError(
            f"modeldeploy connection {self.modeldeploy_conn_id!r} is not defined: create it "
            f"in Admin > Connections with one of the types {self._installed_types()}, or set "
            f"AIRFLOW_CONN_{self.modeldeploy_conn_id.upper()}"
        )

    def _check_type(self, conn: Connection) -> None:
        from modeldeploy.flavors import available_flavors

        flavor = flavor_of(conn.conn_type)
        if flavor is None or flavor not in available_flavors():
            raise ModelDeployConnectionError(
                f"connection {conn.conn_id!r} has type {conn.conn_type!r}, but a modeldeploy "
                f"connection needs one of {self._installed_types()} (one per installed "
                "flavor; `modeldeploy flavors` lists them)"
            )

    @property
    def flavor(self) -> str:
        conn = self.connection
        return DEFAULT_FLAVOR if conn is None else flavor_of(conn.conn_type) or DEFAULT_FLAVOR

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

    @cached_property
    def settings(self) -> DeployerSettings:
        """The flavor's settings model from the connection (may hold secrets: never log or
        XCom it; its repr leaves them out). Secret values are masked in task logs."""
        from modeldeploy.errors import InvalidConfigError
        from modeldeploy.flavors import settings_class_of
        from modeldeploy.settings import secret_values, validate_settings

        conn = self.connection
        raw = dict(self.extras)
        if conn is not None:  # not in the form; a flavor may still read them (or refuse them)
            raw.update({k: v for k, v in (("login", conn.login), ("password", conn.password)) if v})
        flavor = self.flavor
        cls = settings_class_of(flavor)
        try:
            settings = validate_settings(cls, raw, flavor)
        except InvalidConfigError as exc:
            raise ModelDeployConnectionError(
                f"connection {self.modeldeploy_conn_id!r}: {exc}"
            ) from None
        for value in secret_values(settings, cls):
            mask_in_task_logs(value)
        return settings

    # --- engine objects -----------------------------------------------------------------

    def get_conn(self) -> ModelDeployer:
        """The engine's deployer for this connection (Airflow's name for the client)."""
        return self.get_deployer()

    def get_deployer(self) -> ModelDeployer:
        from modeldeploy.flavors import create_deployer

        return create_deployer(self.flavor, self.settings)

    def get_registry(self, deployer: ModelDeployer | None = None) -> ModelRegistry:
        """The MLflow registry for candidates and the champion alias: the engine decides
        (`modeldeploy.flavors.registry_for`)."""
        from modeldeploy.flavors import registry_for

        return registry_for(deployer or self.get_deployer())

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


__all__ = ["CONN_TYPE_PREFIX", "DEFAULT_CONN_ID", "ModelDeployConnectionError", "ModelDeployHook"]
