"""Sensor that waits until a model server is ready (or stopped), in any sensor mode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from modeldeploy.waiting import DEFAULT_TIMEOUT

from modeldeploy_provider.hooks.modeldeploy import DEFAULT_CONN_ID, ModelDeployHook
from modeldeploy_provider.links.modeldeploy import PredictionUrlLink
from modeldeploy_provider.quiet import QuietDependenciesMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelServerReadySensor(QuietDependenciesMixin, BaseSensorOperator):
    """Wait until a model server is ready for the model last written to it.

    ``poke`` and ``reschedule`` modes ask the platform once per ``poke_interval``;
    ``deferrable=True`` asks once and, unless the server is already there, hands the wait
    to `ModelServerReadyTrigger`, which watches instead of polling where the flavor can.
    "Ready" is the engine's: for the generation written, never a Ready left over from the
    previous model. A terminal failure fails the task at once with the platform's reason
    (or skips it with ``soft_fail``).

    :param model_server_uuid: e.g. ``deploy.output["uuid"]``.
    :param modeldeploy_conn_id: the connection the server was deployed with.
    :param target_state: ``active`` (ready, default) or ``inactive`` (stopped).
    :param timeout: seconds to wait in total (the sensor's own ``timeout``).
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.

    Returns (XCom) the server's description (uuid, flavor, model, state, prediction URL...).
    """

    template_fields: Sequence[str] = ("modeldeploy_conn_id", "model_server_uuid", "target_state")
    operator_extra_links = (PredictionUrlLink(),)
    ui_color = "#e0ecf8"

    def __init__(
        self,
        *,
        model_server_uuid: str,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        target_state: str = "active",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        kwargs.setdefault("multiple_outputs", True)  # `ready.output["prediction_url"]`
        super().__init__(**kwargs)
        self.model_server_uuid = model_server_uuid
        self.modeldeploy_conn_id = modeldeploy_conn_id
        self.target_state = target_state
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ModelDeployHook:
        return ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id)

    def _target(self) -> Any:
        from modeldeploy.status import ServiceState

        try:
            return ServiceState(self.target_state)
        except ValueError:
            raise AirflowException(
                f"target_state must be one of {', '.join(s.value for s in ServiceState)}, "
                f"got {self.target_state!r}"
            ) from None

    def poke(self, context: Context) -> PokeReturnValue:
        from modeldeploy.status import ServiceState

        target = self._target()
        with self.hook.get_deployer() as deployer:
            server = deployer.get_model_server(self.model_server_uuid)
            status = server.check_status()
        if status.is_current and status.state == target:
            info = server.info().model_dump(mode="json")
            self._publish(info)
            return PokeReturnValue(is_done=True, xcom_value=info)
        if status.is_current and status.state == ServiceState.ERROR:
            self._fail(
                f"model server {server.uuid} ({server.config.model_name}) failed: "
                f"{status.last_error or 'no reason given by the platform'}"
            )
        self.log.info(
            "model server %s is %s, waiting for %s", server.uuid, status.state.value, target.value
        )
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)  # already there (or failed): no defer, no triggerer round trip
        if first.is_done:
            return first.xcom_value
        from modeldeploy_provider.triggers.modeldeploy import ModelServerReadyTrigger

        self.defer(
            trigger=ModelServerReadyTrigger(
                model_server_uuid=str(self.model_server_uuid),
                modeldeploy_conn_id=self.modeldeploy_conn_id,
                target_state=self.target_state,
                timeout=float(self.timeout),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            self._fail(str(event.get("message")))
        self.log.info("%s", event.get("message"))
        self._publish(event["server"])
        return event["server"]

    def _publish(self, info: dict[str, Any]) -> None:
        self.prediction_url = info.get("prediction_url")  # read by PredictionUrlLink
        if self.prediction_url:
            self.log.info("Prediction URL: %s", self.prediction_url)  # also the extra link

    def _fail(self, message: str) -> None:
        """A terminal failure: retrying cannot help, so fail without retries (or skip)."""
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowFailException(message)
