"""Trigger that waits in the triggerer until a model server reaches a state.

The waiting itself is the engine's async wait (`modeldeploy.waiting_async`: watch over
async HTTP, not sleep, where the flavor can; ready only for the generation written; one
monotonic deadline; terminal failure reported at once with the platform's reason). It is
awaited in the triggerer's event loop, so no thread is held per trigger, and cancelling the
trigger closes its watch. The trigger serializes only its arguments, never settings or
secrets: the triggerer reads the connection itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from modeldeploy.waiting import DEFAULT_TIMEOUT

from modeldeploy_provider.hooks.modeldeploy import DEFAULT_CONN_ID, ModelDeployHook

if TYPE_CHECKING:
    from modeldeploy.deployer import DeployerSettings


class ModelServerReadyTrigger(BaseTrigger):
    """Fires one event when the model server is in `target_state`, failed, or out of time.

    The event is `{"status": "success" | "error" | "timeout", "message": str,
    "server": <ModelServerInfo as JSON> | None, "model_server_uuid": str}`.

    :param model_server_uuid: the server to watch.
    :param modeldeploy_conn_id: connection that says where the server lives.
    :param target_state: `active` (ready) or `inactive` (stopped).
    :param timeout: seconds to wait, from when the trigger starts running.
    """

    def __init__(
        self,
        model_server_uuid: str,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        target_state: str = "active",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.model_server_uuid = str(model_server_uuid)
        self.modeldeploy_conn_id = modeldeploy_conn_id
        self.target_state = target_state
        self.timeout = float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_server_uuid": self.model_server_uuid,
                "modeldeploy_conn_id": self.modeldeploy_conn_id,
                "target_state": self.target_state,
                "timeout": self.timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id)
        try:
            flavor, settings = await hook.aget_connection_settings()
        except Exception as exc:
            yield self._event("error", f"{type(exc).__name__}: {exc}")
            return
        yield await self._wait(flavor, settings)

    async def _wait(self, flavor: str, settings: DeployerSettings) -> TriggerEvent:
        from modeldeploy.errors import DeploymentTimeoutError, ModelDeployError
        from modeldeploy.flavors import create_deployer
        from modeldeploy.status import ServiceState
        from modeldeploy.waiting import Deadline
        from modeldeploy.waiting_async import wait_for_server

        try:
            deadline = Deadline(self.timeout)
            deployer = create_deployer(flavor, settings)
        except (ModelDeployError, ValueError) as exc:
            return self._event("error", str(exc))
        try:
            server = await wait_for_server(
                deployer,
                self.model_server_uuid,
                ServiceState(self.target_state),
                deadline,
                self._log_transition,
            )
        except DeploymentTimeoutError as exc:
            return self._event("timeout", str(exc))
        except (ModelDeployError, ValueError) as exc:
            return self._event("error", str(exc))
        finally:
            await deployer.aclose()  # also when cancelled: the watch connection closes
        info = server.info().model_dump(mode="json")
        return self._event(
            "success",
            f"model server {self.model_server_uuid} is {self.target_state}"
            + (f" at {info['prediction_url']}" if info.get("prediction_url") else ""),
            info,
        )

    def _log_transition(self, server: Any, status: Any) -> None:
        self.log.info("model server %s is %s", server.uuid, status.state.value)

    def _event(
        self, status: str, message: str, server: dict[str, Any] | None = None
    ) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "message": message,
                "server": server,
                "model_server_uuid": self.model_server_uuid,
            }
        )
