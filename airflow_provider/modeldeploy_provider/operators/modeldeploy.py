"""Operators: continuous deployment, the gate, and the model-server verbs.

Each operator translates its (templated) arguments into one call of the engine in
`modeldeploy` and its result into a JSON-ready XCom; the deployment logic itself lives
in `modeldeploy.rollout` and `modeldeploy.deployer`. The engine and its heavy dependencies
are imported in `execute`, so importing this module in a DAG file stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator, BaseOperator, conf
from airflow.sdk.exceptions import AirflowException
from modeldeploy.waiting import DEFAULT_TIMEOUT

from modeldeploy_provider._values import as_bool, as_mapping, as_metrics, as_number, as_rules
from modeldeploy_provider.hooks.modeldeploy import DEFAULT_CONN_ID, ModelDeployHook
from modeldeploy_provider.links.modeldeploy import PredictionUrlLink
from modeldeploy_provider.operators.progressive import ProgressiveRolloutMixin
from modeldeploy_provider.quiet import QuietDependenciesMixin
from modeldeploy_provider.records import DeploymentRecordsMixin

if TYPE_CHECKING:
    from airflow.sdk import Context
    from modeldeploy.approval import ApprovalDecision
    from modeldeploy.gate import Gate
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import RolloutOutcome
    from modeldeploy.server import ModelServer, ModelServerInfo
    from modeldeploy.status import ServiceStatus

#: XCom key of the rollout written before a deferral, finished on resume
PENDING_ROLLOUT_KEY = "pending_rollout"
#: extra time the scheduler allows a deferred task beyond the engine's own deadline
DEFER_GRACE = timedelta(seconds=60)


class ModelDeployTaskError(AirflowException):
    """A deploy, start or stop did not complete; the message carries the platform's reason."""


class _ModelDeployOperator(QuietDependenciesMixin, BaseOperator):
    """Connection and timeout handling shared by the operators below."""

    template_fields: Sequence[str] = ("modeldeploy_conn_id", "timeout")

    def __init__(
        self,
        *,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | str = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        # each key of the returned dict is also its own XCom: `deploy.output["uuid"]`
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.modeldeploy_conn_id = modeldeploy_conn_id
        self.timeout = timeout

    @cached_property
    def hook(self) -> ModelDeployHook:
        return ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id)

    @property
    def timeout_seconds(self) -> float:
        from modeldeploy.waiting import check_timeout

        return check_timeout(as_number(self.timeout, "timeout"))

    def _log_transition(self, server: ModelServer, status: ServiceStatus) -> None:
        detail = f" ({status.last_error})" if status.last_error else ""
        self.log.info("model server %s is %s%s", server.uuid, status.state.value, detail)

    def _publish_url(self, url: str | None) -> None:
        self.prediction_url = url  # read by PredictionUrlLink when the task ends
        if url:
            self.log.info("Prediction URL: %s", url)  # also the task's extra link


class DeployModelOperator(ProgressiveRolloutMixin, DeploymentRecordsMixin, _ModelDeployOperator):
    """Deploy a model continuously: gate it, register it, update the serving model in place.

    Calls `modeldeploy.rollout.continuous_deploy`: the candidate is checked against `gate_rules`
    and, with `champion_metric`, against the registry's champion; if it passes, the newest
    model server of the same pipeline, step and model is updated in place (its URL stays)
    or a new one is created, and the `champion` alias moves to it. If it does not pass,
    the champion keeps serving (restarted if it was down) and the task succeeds with the
    gate's reason. A rollout that fails leaves the previous model serving and fails the task.

    :param model_name: registered model name (letters, digits, ``.``, ``_``, ``-``).
    :param model_uri: the model to serve: ``runs:/``, ``models:/``, a path, or a storage URI
        (``s3://``, ``gs://``...); typically ``train.output["model_uri"]``.
    :param modeldeploy_conn_id: a ``modeldeploy_<flavor>`` connection; the undefined
        default means the default flavor (the local MLflow server).
    :param service_config: flavor fields, e.g. ``{"port": 8080, "workers": 2}`` for MLflow,
        ``{"replicas": 2, "implementation": "SKLEARN_SERVER"}`` for Seldon,
        ``{"model_format": "sklearn", "protocol": "v2"}`` for KServe.
    :param metrics: the candidate's metrics (dict or JSON), e.g. ``evaluate.output["metrics"]``.
    :param gate_rules: rules such as ``["accuracy>=0.9", "log_loss<=0.3"]`` (or one
        comma-separated string); none means every candidate passes.
    :param champion_metric: also require the candidate to be no worse on this metric than
        the champion by ``min_improvement``.
    :param direction: ``"minimize"`` (lower is better) or ``"maximize"`` for
        ``champion_metric``; may be left out only for well-known metrics (rmse, mse, mae,
        log_loss, loss, error... minimize; accuracy, f1, auc, r2, precision, recall...
        maximize). Any other metric without it is refused.
    :param allow_signature_change: roll out even when the candidate's MLflow signature
        breaks the serving model's clients (an input removed or renamed, a type narrowed,
        outputs changed); by default such a candidate is refused before anything changes.
    :param register_model: register the candidate in the MLflow registry and move the
        ``champion`` alias on success (needed for the champion gate and for rollback).
    :param pipeline_name: lineage and identity; default the DAG id.
    :param run_id: default the DAG run id.
    :param step_name: default the task id. Servers of the same pipeline, step and model
        are updated in place.
    :param replace: update the existing server in place (default) or start another.
    :param timeout: seconds to wait for the server to be ready.
    :param wait_for_completion: with False, write the change and return at once with the
        server still starting: the champion alias is not moved and a failure is not undone;
        follow with a `ModelServerReadySensor`. Prefer ``deferrable=True`` to free the slot.
    :param deferrable: wait in the triggerer instead of a worker slot; the rollout is
        finished (alias moved, older servers retired, or a failure undone) when it resumes.
    :param strategy: ``in_place`` (default), ``canary``, ``linear``, ``blue_green`` or
        ``shadow``, or a dict such as ``{"kind": "canary", "percents": [10, 50, 100],
        "bake_seconds": 300}`` (see docs/progressive-delivery.md). Deferrable, every bake
        time is spent in the triggerer and each step's analysis is written to the task log.
    :param analysis: how each step is judged, e.g. ``{"rules": ["error_rate<=0.01",
        "p99_ms<=50"], "min_requests": 100}``, or just the rules as one string.
    :param fail_on_rollback: fail the task when the analysis rolled the candidate back
        (default); with False the task succeeds with ``action`` ``rolled_back``.
    :param approval: the XCom of a `ModelApprovalOperator` upstream (``approve.output``):
        its Approve (who, why, when) is tagged on the version this task registers, as a
        Reject is on the version that operator registers.

    Returns (XCom) ``{"action", "message", "uuid", "flavor", "model_name", "model_version",
    "state", "prediction_url", "candidate_version", "champion_version", "gate_passed",
    "gate_reason", "retired", "server", "rollout"}``; ``action`` is ``created``,
    ``updated``, ``kept``, ``restarted`` or ``none``, and with a strategy ``promoted``,
    ``rolled_back``, ``reported`` or (``wait_for_completion=False``) ``progressing``;
    ``rollout`` is the progressive rollout's state, else None; ``record`` the deployment
    record (`modeldeploy.records`), None while a rollout is in progress.

    When the rollout changes what serves, the task emits an asset event for the model's
    asset ``modeldeploy://<flavor>/<namespace-or-home>/<model>`` (through the asset alias
    ``modeldeploy``, added to ``outlets``) with the record as its extra; see
    `modeldeploy_provider.records.model_asset` to schedule a DAG on it.
    """

    template_fields: Sequence[str] = (
        "modeldeploy_conn_id",
        "model_name",
        "model_uri",
        "model_version",
        "model_type",
        "service_config",
        "metrics",
        "gate_rules",
        "champion_metric",
        "min_improvement",
        "direction",
        "allow_signature_change",
        "register_model",
        "pipeline_name",
        "run_id",
        "step_name",
        "description",
        "replace",
        "timeout",
        "wait_for_completion",
        "strategy",
        "analysis",
        "fail_on_rollback",
        "approval",
    )
    template_fields_renderers = {
        "service_config": "json",
        "metrics": "json",
        "strategy": "json",
        "analysis": "json",
    }
    operator_extra_links = (PredictionUrlLink(),)
    ui_color = "#d6f0e0"

    def __init__(
        self,
        *,
        model_name: str,
        model_uri: str,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        service_config: dict[str, Any] | str | None = None,
        model_version: str | None = None,
        model_type: str | None = None,
        metrics: dict[str, float] | str | None = None,
        gate_rules: list[str] | str | None = None,
        champion_metric: str | None = None,
        min_improvement: float | str = 0.0,
        direction: str | None = None,
        allow_signature_change: bool | str = False,
        register_model: bool | str = True,
        pipeline_name: str | None = None,
        run_id: str | None = None,
        step_name: str | None = None,
        description: str | None = None,
        replace: bool | str = True,
        timeout: float | str = DEFAULT_TIMEOUT,
        wait_for_completion: bool | str = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        strategy: dict[str, Any] | str | None = None,
        analysis: dict[str, Any] | str | None = None,
        fail_on_rollback: bool | str = True,
        approval: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(modeldeploy_conn_id=modeldeploy_conn_id, timeout=timeout, **kwargs)
        self.strategy = strategy
        self.analysis = analysis
        self.fail_on_rollback = fail_on_rollback
        self.approval = approval
        self.model_name = model_name
        self.model_uri = model_uri
        self.service_config = service_config
        self.model_version = model_version
        self.model_type = model_type
        self.metrics = metrics
        self.gate_rules = gate_rules
        self.champion_metric = champion_metric
        self.min_improvement = min_improvement
        self.direction = direction
        self.allow_signature_change = allow_signature_change
        self.register_model = register_model
        self.pipeline_name = pipeline_name
        self.run_id = run_id
        self.step_name = step_name
        self.description = description
        self.replace = replace
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self._add_deployments_alias()

    def service_config_for(self, context: Context) -> dict[str, Any]:
        """The engine's service config: flavor fields plus identity and lineage."""
        config = dict(as_mapping(self.service_config, "service_config"))
        config.update(
            model_name=self.model_name,
            model_uri=self.model_uri,
            pipeline_name=self.pipeline_name or self.dag_id,
            run_id=self.run_id or context["run_id"],
            step_name=self.step_name or self.task_id,
        )
        optional = {
            "model_version": self.model_version,
            "model_type": self.model_type,
            "description": self.description,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        return config

    def gate(self) -> Gate:
        from modeldeploy.gate import Gate

        return Gate.from_rules(
            as_rules(self.gate_rules),
            champion_metric=self.champion_metric or None,
            min_improvement=as_number(self.min_improvement, "min_improvement"),
            direction=self.direction or None,
        )

    def _registry(self, deployer: Any) -> ModelRegistry | None:
        if not as_bool(self.register_model, "register_model"):
            return None
        registry = self.hook.get_registry(deployer)
        self._tracking_uri = registry.tracking_uri  # the lineage input's namespace
        return registry

    def execute(self, context: Context) -> dict[str, Any]:
        from modeldeploy.rollout import continuous_deploy

        wait_for_completion = as_bool(self.wait_for_completion, "wait_for_completion")
        with self.hook.get_deployer() as deployer:
            outcome = continuous_deploy(
                deployer,
                self.service_config_for(context),
                metrics=as_metrics(self.metrics),
                gate=self.gate(),
                registry=self._registry(deployer),
                replace=as_bool(self.replace, "replace"),
                timeout=self.timeout_seconds,
                on_transition=self._log_transition,
                wait=wait_for_completion and not self.deferrable,
                allow_signature_change=as_bool(
                    self.allow_signature_change, "allow_signature_change"
                ),
                strategy=_json_or_text(self.strategy),
                analysis=_json_or_text(self.analysis),
            )
        self.log.info("%s", outcome.message)
        if outcome.rollout is not None and wait_for_completion:
            return self.follow_rollout(context, outcome)
        if outcome.pending is not None and self.deferrable and wait_for_completion:
            from modeldeploy_provider.triggers.modeldeploy import ModelServerReadyTrigger

            pending = outcome.model_dump(mode="json")
            # also in XCom: dag.test() of Airflow 3.3 drops defer kwargs (apache/airflow#69942)
            context["ti"].xcom_push(key=PENDING_ROLLOUT_KEY, value=pending)
            self.defer(
                trigger=ModelServerReadyTrigger(
                    model_server_uuid=outcome.pending.server_uuid,
                    modeldeploy_conn_id=self.modeldeploy_conn_id,
                    target_state="active",
                    timeout=self.timeout_seconds,
                ),
                method_name="execute_complete",
                kwargs={"outcome": pending},
                timeout=timedelta(seconds=self.timeout_seconds) + DEFER_GRACE,
            )
        return self._result(outcome)

    def execute_complete(
        self, context: Context, event: dict[str, Any], outcome: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger: let the engine finish (or undo) the rollout."""
        from modeldeploy.errors import ModelDeployError
        from modeldeploy.rollout import finish_rollout

        if outcome is None:
            outcome = context["ti"].xcom_pull(task_ids=self.task_id, key=PENDING_ROLLOUT_KEY)
        _delete_pending(context, self.task_id)  # resumed: the record has served its purpose
        if not outcome:
            raise ModelDeployTaskError(
                f"{self.task_id} resumed without its pending rollout; clear the task to retry"
            )

        ready = event.get("status") == "success"
        if not ready:
            self.log.error("model server did not become ready: %s", event.get("message"))
        undo = (
            "the previous model was restored"
            if outcome.get("action") == "updated"
            else "the new model server was removed"
        )
        try:  # the engine checks again: finishes the rollout, or undoes it and raises
            with self.hook.get_deployer() as deployer:
                finished = finish_rollout(
                    deployer,
                    outcome,
                    self._registry(deployer),
                    self.timeout_seconds if ready else 0,
                    self._log_transition,
                )
        except ModelDeployError as exc:
            raise ModelDeployTaskError(
                f"{event.get('message') if not ready else exc}; {undo}"
            ) from exc
        self.log.info("%s", finished.message)
        return self._result(finished)

    def _record_approval(self, outcome: RolloutOutcome) -> None:
        decision = _approval_decision(self.approval)
        if decision is None or outcome.candidate_version is None:
            return
        if as_bool(self.register_model, "register_model"):
            from modeldeploy.approval import record_approval

            registry = self.hook.get_registry()
            record_approval(registry, self.model_name, decision, version=outcome.candidate_version)

    def _result(self, outcome: RolloutOutcome) -> dict[str, Any]:
        self._record_approval(outcome)
        result = outcome_to_xcom(outcome)
        self._publish_url(result["prediction_url"])
        self._emit_record(outcome.record)
        return result


class ModelGateOperator(QuietDependenciesMixin, BaseBranchOperator):
    """Decide from metrics whether a candidate may be deployed; branch or short-circuit.

    Evaluates `modeldeploy.gate.Gate` on ``metrics``; with ``champion_metric`` the candidate
    is also compared with the registry's champion of ``model_name``. The reason is logged
    and the decision returned as XCom ``{"passed", "reason", "checks", "champion_version"}``.

    Passed: continue with ``on_pass`` (default: every task directly downstream except the
    ``on_reject`` branch, so ``gate >> [deploy, notify]`` with ``on_reject="notify"`` runs
    only ``deploy`` on a pass and only ``notify`` on a reject).
    Rejected: continue with ``on_reject``; without it every task directly downstream is
    skipped (short-circuit), so deployment is skipped with the reason in the log.

    :param metrics: candidate metrics (dict or JSON), e.g. ``evaluate.output["metrics"]``.
    :param rules: e.g. ``["accuracy>=0.9"]`` or ``"accuracy>=0.9,log_loss<=0.3"``.
    :param model_name: registered model whose champion the candidate must beat.
    :param champion_metric: metric compared with the champion; ``min_improvement`` and
        ``direction`` (minimize or maximize, inferred only for well-known metric names) as
        in `DeployModelOperator`.
    :param on_pass: task or group id(s) to follow when the gate passes.
    :param on_reject: task or group id(s) to follow when it rejects (e.g. a notification).
    :param modeldeploy_conn_id: connection whose MLflow registry holds the champion.
    """

    template_fields: Sequence[str] = (
        "modeldeploy_conn_id",
        "metrics",
        "rules",
        "model_name",
        "champion_metric",
        "min_improvement",
        "direction",
        "on_pass",
        "on_reject",
    )
    template_fields_renderers = {"metrics": "json"}
    ui_color = "#fff2cc"

    def __init__(
        self,
        *,
        metrics: dict[str, float] | str,
        rules: list[str] | str | None = None,
        model_name: str | None = None,
        champion_metric: str | None = None,
        min_improvement: float | str = 0.0,
        direction: str | None = None,
        on_pass: str | list[str] | None = None,
        on_reject: str | list[str] | None = None,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.rules = rules
        self.model_name = model_name
        self.champion_metric = champion_metric
        self.min_improvement = min_improvement
        self.direction = direction
        self.on_pass = on_pass
        self.on_reject = on_reject
        self.modeldeploy_conn_id = modeldeploy_conn_id

    def evaluate(self) -> dict[str, Any]:
        from modeldeploy.gate import Gate

        gate = Gate.from_rules(
            as_rules(self.rules),
            champion_metric=self.champion_metric or None,
            min_improvement=as_number(self.min_improvement, "min_improvement"),
            direction=self.direction or None,
        )
        champion = None
        if gate.champion_challenger is not None:
            if not self.model_name:
                raise AirflowException(
                    f"{self.task_id}: champion_metric needs model_name, the registered model "
                    "whose champion the candidate is compared with"
                )
            hook = ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id)
            champion = hook.get_registry().get_champion(self.model_name)
        decision = gate.evaluate(as_metrics(self.metrics), champion.metrics if champion else None)
        return {
            **decision.model_dump(mode="json"),
            "champion_version": champion.version if champion else None,
        }

    def choose_branch(self, context: Context) -> str | Iterable[str] | None:
        self._decision = self.evaluate()
        if self._decision["passed"]:
            self.log.info("gate %s", self._decision["reason"])
            if self.on_pass is None:
                return self._downstream_except(self.on_reject)
            return self.on_pass
        if self.on_reject is None:
            self.log.warning("gate %s; skipping the deployment", self._decision["reason"])
        else:
            self.log.warning(
                "gate %s; continuing with %s", self._decision["reason"], self.on_reject
            )
        return self.on_reject

    def _downstream_except(self, excluded: str | list[str] | None) -> list[str]:
        """Every task directly downstream but the reject branch (task or group ids)."""
        skip = [excluded] if isinstance(excluded, str) else list(excluded or [])
        return [
            task.task_id
            for task in self.downstream_list
            if not any(task.task_id == s or task.task_id.startswith(f"{s}.") for s in skip)
        ]

    def execute(self, context: Context) -> None:
        branches = self.choose_branch(context)
        # Pushed first: skipping downstream tasks ends `execute` with an exception.
        # Each key is also its own XCom: `gate.output["passed"]`.
        ti = context["ti"]
        ti.xcom_push(key="return_value", value=self._decision)
        for key, value in self._decision.items():
            ti.xcom_push(key=key, value=value)
        self.do_branch(context, branches)


class _ModelServerOperator(_ModelDeployOperator):
    """An operator that acts on one model server by uuid."""

    template_fields: Sequence[str] = ("modeldeploy_conn_id", "model_server_uuid", "timeout")

    def __init__(self, *, model_server_uuid: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_server_uuid = model_server_uuid

    def _info(self, info: ModelServerInfo) -> dict[str, Any]:
        result = info.model_dump(mode="json")
        self._publish_url(result.get("prediction_url"))
        return result


class _WaitingServerOperator(_ModelServerOperator):
    """Start or stop: ask the platform, then wait here or in the triggerer."""

    target_state = "active"
    operator_extra_links = (PredictionUrlLink(),)

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable

    def _act(self, deployer: Any, wait: bool) -> ModelServer:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        with self.hook.get_deployer() as deployer:
            if not self.deferrable:
                return self._info(self._act(deployer, wait=True).info())
            server = self._act(deployer, wait=False)
            from modeldeploy_provider.triggers.modeldeploy import ModelServerReadyTrigger

            self.defer(
                trigger=ModelServerReadyTrigger(
                    model_server_uuid=str(server.uuid),
                    modeldeploy_conn_id=self.modeldeploy_conn_id,
                    target_state=self.target_state,
                    timeout=self.timeout_seconds,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout_seconds) + DEFER_GRACE,
            )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            raise ModelDeployTaskError(str(event.get("message")))
        self.log.info("%s", event.get("message"))
        server = event["server"]
        self._publish_url(server.get("prediction_url"))
        return server


class StartModelServerOperator(_WaitingServerOperator):
    """Start a stopped model server and wait until it serves (no-op if it already does).

    :param model_server_uuid: e.g. ``deploy.output["uuid"]``.
    :param timeout: seconds to wait for it to be ready.
    :param deferrable: wait in the triggerer.
    """

    target_state = "active"

    def _act(self, deployer: Any, wait: bool) -> ModelServer:
        return deployer.start_model_server(
            self.model_server_uuid, self.timeout_seconds, self._log_transition, wait=wait
        )


class StopModelServerOperator(_WaitingServerOperator):
    """Stop serving but keep the model server's record, so it can be started again.

    :param model_server_uuid: e.g. ``deploy.output["uuid"]``.
    :param force: stop at once instead of gracefully.
    :param timeout: seconds to wait for it to stop.
    :param deferrable: wait in the triggerer.
    """

    template_fields: Sequence[str] = (*_ModelServerOperator.template_fields, "force")
    target_state = "inactive"

    def __init__(self, *, force: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.force = force

    def _act(self, deployer: Any, wait: bool) -> ModelServer:
        return deployer.stop_model_server(
            self.model_server_uuid,
            self.timeout_seconds,
            force=as_bool(self.force, "force"),
            on_transition=self._log_transition,
            wait=wait,
        )


class DeleteModelServerOperator(_ModelServerOperator):
    """Delete a model server and everything it owns. Idempotent: deleting what is gone succeeds.

    :param model_server_uuid: e.g. ``deploy.output["uuid"]``.
    :param force: delete at once instead of gracefully.
    :param timeout: seconds to wait until nothing is left.

    Returns ``{"uuid", "deleted"}``, ``deleted`` False when it was already gone.
    """

    template_fields: Sequence[str] = (*_ModelServerOperator.template_fields, "force")

    def __init__(self, *, force: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.force = force

    def execute(self, context: Context) -> dict[str, Any]:
        from modeldeploy.errors import ModelServerNotFoundError

        with self.hook.get_deployer() as deployer:
            try:
                deployer.delete_model_server(
                    self.model_server_uuid, self.timeout_seconds, force=as_bool(self.force, "force")
                )
            except ModelServerNotFoundError:
                self.log.info("model server %s is already gone", self.model_server_uuid)
                return {"uuid": str(self.model_server_uuid), "deleted": False}
            self.log.info("deleted model server %s", self.model_server_uuid)
            return {"uuid": str(self.model_server_uuid), "deleted": True}


class VerifyPredictionsOperator(_ModelServerOperator):
    """Check a live model server: send ``data``, compare its answers with ``expected``.

    Calls `modeldeploy.verification.verify_predictions`: numbers match within ``tolerance``
    (absolute) or ``rel_tolerance`` (relative), labels exactly. The task fails, naming the
    worst mismatches (input row, expected, got), when the share of matching rows is below
    ``min_accuracy`` (without it, when any row differs).

    :param model_server_uuid: e.g. ``deploy.output["uuid"]``.
    :param data: rows in a form the server reads, e.g. ``{"dataframe_split": {...}}``.
    :param expected: one expected answer per row.

    Returns the `VerificationResult` as a dict (``passed``, ``accuracy``, ``predictions``,
    ``mismatches``, ``message``...).
    """

    template_fields: Sequence[str] = (
        *_ModelServerOperator.template_fields,
        "data",
        "expected",
        "min_accuracy",
        "tolerance",
        "rel_tolerance",
    )
    template_fields_renderers = {"data": "json", "expected": "json"}

    def __init__(
        self,
        *,
        data: Any,
        expected: list[Any] | str | None = None,
        min_accuracy: float | str | None = None,
        tolerance: float | str = 0.0,
        rel_tolerance: float | str = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.expected = expected
        self.min_accuracy = min_accuracy
        self.tolerance = tolerance
        self.rel_tolerance = rel_tolerance

    def execute(self, context: Context) -> dict[str, Any]:
        from modeldeploy.verification import VerificationError, verify_predictions

        expected = self.expected
        if isinstance(expected, str):  # rendered by Jinja, or given as JSON
            import json

            expected = json.loads(expected)
        minimum = self.min_accuracy
        with self.hook.get_deployer() as deployer:
            server = deployer.get_model_server(self.model_server_uuid)
            try:
                result = verify_predictions(
                    server,
                    self.data,
                    expected,
                    as_number(self.tolerance, "tolerance"),
                    as_number(self.rel_tolerance, "rel_tolerance"),
                    None if minimum in (None, "") else as_number(minimum, "min_accuracy"),
                )
            except VerificationError as exc:
                raise ModelDeployTaskError(str(exc)) from exc
        self.log.info("verification passed: %s", result.message)
        self._publish_url(result.prediction_url)
        return result.model_dump(mode="json")


class RollbackModelOperator(DeploymentRecordsMixin, _ModelDeployOperator):
    """Redeploy the previous champion in place and move the ``champion`` alias back.

    Calls `modeldeploy.rollout.rollback`; needs at least two successful rollouts of the model.

    :param model_name: registered model to roll back.
    :param pipeline_name: only the servers of this pipeline (default: any).
    :param step_name: only the servers of this step (default: any).
    :param timeout: seconds to wait for the previous model to be ready.
    """

    template_fields: Sequence[str] = (
        "modeldeploy_conn_id",
        "model_name",
        "pipeline_name",
        "step_name",
        "timeout",
    )
    operator_extra_links = (PredictionUrlLink(),)

    def __init__(
        self,
        *,
        model_name: str,
        pipeline_name: str | None = None,
        step_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.pipeline_name = pipeline_name
        self.step_name = step_name
        self._add_deployments_alias()

    def execute(self, context: Context) -> dict[str, Any]:
        from modeldeploy.rollout import rollback

        with self.hook.get_deployer() as deployer:
            registry = self.hook.get_registry(deployer)
            self._tracking_uri = registry.tracking_uri
            outcome = rollback(
                deployer,
                registry,
                self.model_name,
                pipeline_name=self.pipeline_name or None,
                step_name=self.step_name or None,
                timeout=self.timeout_seconds,
                on_transition=self._log_transition,
                run_id=context["run_id"],
            )
            self.log.info("%s", outcome.message)
            result = outcome_to_xcom(outcome)
            self._publish_url(result["prediction_url"])
            self._emit_record(outcome.record)
            return result


def _approval_decision(approval: Any) -> ApprovalDecision | None:
    """A `ModelApprovalOperator`'s XCom (approved ones only) as the engine's decision."""
    from modeldeploy.approval import ApprovalDecision

    answer = as_mapping(approval, "approval") if approval else {}
    if not answer.get("approved"):
        return None
    decided = {"decided_at": answer["decided_at"]} if answer.get("decided_at") else {}
    return ApprovalDecision(
        approved=True, by=answer.get("by"), reason=answer.get("reason") or "", **decided
    )


def _json_or_text(value: Any) -> Any:
    """A templated dict arrives as its JSON text; a bare strategy kind stays text."""
    if isinstance(value, str) and value.strip().startswith("{"):
        return as_mapping(value, "strategy/analysis")
    return value


def _delete_pending(context: Context, task_id: str) -> None:
    """Remove the pending-rollout XCom written before the deferral, so none goes stale."""
    from airflow.sdk.execution_time.xcom import XCom

    ti = context["ti"]
    XCom.delete(
        key=PENDING_ROLLOUT_KEY,
        task_id=task_id,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        map_index=ti.map_index,
    )


def outcome_to_xcom(outcome: RolloutOutcome) -> dict[str, Any]:
    """Flatten a `RolloutOutcome` into the JSON dict the deploy operators return."""
    server = outcome.server.model_dump(mode="json") if outcome.server else None
    decision = outcome.decision
    return {
        "action": outcome.action,
        "message": outcome.message,
        "uuid": server["uuid"] if server else None,
        "flavor": server["flavor"] if server else None,
        "model_name": outcome.model_name,
        "model_version": server["model_version"] if server else None,
        "state": server["state"] if server else None,
        "prediction_url": server["prediction_url"] if server else None,
        "candidate_version": outcome.candidate_version,
        "champion_version": outcome.champion_version,
        "gate_passed": decision.passed if decision else None,
        "gate_reason": decision.reason if decision else None,
        "retired": list(outcome.retired),
        "server": server,
        "rollout": outcome.rollout.model_dump(mode="json") if outcome.rollout else None,
        "record": outcome.record.model_dump(mode="json") if outcome.record else None,
    }
