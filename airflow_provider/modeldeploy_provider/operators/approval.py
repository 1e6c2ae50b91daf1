"""A human approval between the gate and the rollout, or between the steps of a progressive
rollout, on Airflow's human-in-the-loop operators.

`ModelApprovalOperator` is Airflow's own `ApprovalOperator` (Approve / Reject in the
"Required Actions" view, 3.1+) whose body is the engine's champion/challenger report
(`modeldeploy.approval.approval_report`): metrics beside the champion's, the gate's checks,
what each answer does. Approve: the tasks downstream (the deploy) run. Reject: they are
skipped, and the candidate is registered tagged rejected with who and why. No answer
within ``response_timeout`` (24 h by default) is a rejection: Airflow applies the default
option, ``Reject``, so the champion keeps serving.

`ModelStepApprovalOperator` answers a progressive rollout held before a step (strategy
option ``approve_before_steps``): its body is the engine's report of the steps so far;
Approve enters the step and the task drives the rollout on (deferring through each bake
time) until the next hold or the end; Reject rolls it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowSkipException
from modeldeploy.approval import DEFAULT_APPROVAL_TIMEOUT_SECONDS

from modeldeploy_provider._values import as_bool, as_mapping, as_metrics
from modeldeploy_provider.hooks.modeldeploy import DEFAULT_CONN_ID, ModelDeployHook
from modeldeploy_provider.operators.progressive import ProgressiveRolloutMixin
from modeldeploy_provider.quiet import QuietDependenciesMixin
from modeldeploy_provider.records import DeploymentRecordsMixin

if TYPE_CHECKING:
    from airflow.sdk import Context
    from modeldeploy.approval import ApprovalDecision
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import RolloutOutcome

#: the form field a reviewer writes the reason in
REASON_PARAM = "reason"
#: XCom key of a step approval's answer while the rollout goes on after it
STEP_ANSWER_KEY = "step_approval"


class _ModelApproval(QuietDependenciesMixin, ApprovalOperator):
    """Approve / Reject with a *Reason* field, Reject by default; the answer as the
    engine's `ApprovalDecision`."""

    ui_color = "#fde2c8"

    def __init__(self, *, response_timeout: timedelta | None, **kwargs: Any) -> None:
        if "defaults" in kwargs:
            raise ValueError(
                f"{type(self).__name__}'s default answer is fixed to Reject (no answer keeps "
                "the champion serving); leave `defaults` out"
            )
        params = {
            REASON_PARAM: Param(
                None,
                type=["null", "string"],
                title="Reason",
                description="Why you approve or reject; recorded on the model version",
            ),
            **(kwargs.pop("params", None) or {}),
        }
        super().__init__(
            defaults=ApprovalOperator.REJECT,
            response_timeout=response_timeout,
            params=params,
            **kwargs,
        )

    def decision(self, event: dict[str, Any]) -> ApprovalDecision:
        """The engine's decision from Airflow's resume event."""
        from modeldeploy.approval import ApprovalDecision

        if event.get("timedout"):
            waited = self.response_timeout.total_seconds() if self.response_timeout else None
            return ApprovalDecision.no_answer(waited)
        user = event.get("responded_by_user") or {}
        reason = (event.get("params_input") or {}).get(REASON_PARAM) or ""
        return ApprovalDecision(
            approved=event["chosen_options"] == [self.APPROVE],
            reason=str(reason),
            by=user.get("name") or user.get("id"),
        )


class ModelApprovalOperator(_ModelApproval):
    """Ask a human to approve a candidate model before it is deployed.

    Put it between the gate and the deploy: ``gate >> approve >> deploy``. The request
    shows the champion/challenger report (markdown) and a *Reason* field; answer it in the
    Airflow UI (Browse > Required Actions, or the task's Required Actions tab) or through
    the HITL REST API.

    :param model_name: the registered model; its champion is read from the registry.
    :param model_uri: the candidate, e.g. ``train.output["model_uri"]``.
    :param metrics: the candidate's metrics (dict or JSON).
    :param gate_decision: the gate's XCom, e.g. ``gate.output`` of a `ModelGateOperator`
        (its checks go into the report); optional.
    :param register_model: record the answer in the MLflow registry: a rejected candidate
        is registered (an approved one is tagged by the deploy) with the tags
        ``modeldeploy.approval`` (``rejected``), ``modeldeploy.approval_by``,
        ``modeldeploy.approval_reason`` and ``modeldeploy.approval_at``.
    :param subject: the request's headline (default ``Deploy <model_name>?``).
    :param response_timeout: how long to wait for an answer; then ``Reject`` is applied
        (default 24 h). ``None`` waits until someone answers.
    :param modeldeploy_conn_id: the connection whose registry holds the champion.

    Other arguments are `ApprovalOperator`'s (``assigned_users``, ``notifiers``,
    ``ignore_downstream_trigger_rules``...). ``options`` and ``defaults`` are fixed.

    Returns (XCom) ``{"approved", "by", "reason", "timed_out", "decision", "decided_at",
    "model_name", "rejected_version"}``; ``rejected_version`` is the version registered
    for a rejected candidate, else None. An approved candidate has no version yet: pass
    this XCom to the deploy (``DeployModelOperator(approval=approve.output)``), which
    tags the approval on the version it registers.
    """

    template_fields: Sequence[str] = (
        "subject",
        "body",
        "model_name",
        "model_uri",
        "metrics",
        "gate_decision",
        "register_model",
        "modeldeploy_conn_id",
    )
    template_fields_renderers = {"metrics": "json", "gate_decision": "json", "body": "md"}

    def __init__(
        self,
        *,
        model_name: str,
        model_uri: str | None = None,
        metrics: dict[str, float] | str | None = None,
        gate_decision: dict[str, Any] | str | None = None,
        register_model: bool | str = True,
        subject: str | None = None,
        response_timeout: timedelta | None = timedelta(seconds=DEFAULT_APPROVAL_TIMEOUT_SECONDS),
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            subject=subject or f"Deploy {model_name}?",
            response_timeout=response_timeout,
            **kwargs,
        )
        self.model_name = model_name
        self.model_uri = model_uri
        self.metrics = metrics
        self.gate_decision = gate_decision
        self.register_model = register_model
        self.modeldeploy_conn_id = modeldeploy_conn_id

    def _registry(self) -> ModelRegistry | None:
        if not as_bool(self.register_model, "register_model"):
            return None
        return ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id).get_registry()

    def report(self) -> str:
        """The champion/challenger report: the request's body."""
        from modeldeploy.approval import approval_report
        from modeldeploy.gate import GateDecision

        registry = self._registry()
        gate = None
        if self.gate_decision:
            gate = GateDecision.model_validate(as_mapping(self.gate_decision, "gate_decision"))
        timeout = self.response_timeout.total_seconds() if self.response_timeout else None
        return approval_report(
            self.model_name,
            as_metrics(self.metrics or {}),
            model_uri=self.model_uri,
            champion=registry.get_champion(self.model_name) if registry else None,
            gate=gate,
            timeout_seconds=timeout,
        )

    def execute(self, context: Context) -> Any:
        self.body = self.report()
        self.log.info("approval requested:\n%s", self.body)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """The answer arrived (or the timeout applied Reject): record it, then go on or skip."""
        if "error" in event:  # not expected: Reject is the default answer
            return super().execute_complete(context, event)
        decision = self.decision(event)
        (self.log.info if decision.approved else self.log.warning)(
            "%s %s", self.model_name, decision.describe()
        )
        rejected = None
        registry = self._registry()
        if registry is not None and not decision.approved:
            from modeldeploy.approval import record_approval

            version = record_approval(
                registry,
                self.model_name,
                decision,
                model_uri=self.model_uri,
                metrics=as_metrics(self.metrics or {}),
                lineage={
                    "pipeline": self.dag_id,
                    "run_id": context["run_id"],
                    "step": self.task_id,
                },
            )
            rejected = version.version if version else None
        result = {
            "approved": decision.approved,
            "by": decision.by,
            "reason": decision.reason,
            "timed_out": decision.timed_out,
            "decision": decision.describe(),
            "decided_at": decision.decided_at.isoformat(),
            "model_name": self.model_name,
            "rejected_version": rejected,
        }
        # Pushed first: skipping the downstream tasks on Reject ends the task with an exception.
        context["ti"].xcom_push(key="return_value", value=result)
        super().execute_complete(context, event)
        return result


class ModelStepApprovalOperator(ProgressiveRolloutMixin, DeploymentRecordsMixin, _ModelApproval):
    """Ask a human whether a progressive rollout held before a step may enter it.

    Put it after the `DeployModelOperator` whose ``strategy`` names
    ``approve_before_steps``: ``deploy >> approve_step_2``. That task ends when the rollout
    waits for approval (its XCom ``rollout.phase`` is ``awaiting_approval``); this one
    shows the engine's report of the steps so far (each step's figures, champion beside
    challenger) in Required Actions. **Approve** enters the step, and this task then drives
    the rollout on like the deploy did (bake times in the triggerer) until it ends or is
    held again, so hold before two steps with two of these in a row. **Reject** rolls the
    rollout back (all traffic and the alias on the champion, the version tagged with who
    and why) and skips the tasks downstream. No answer by the deadline the strategy's
    ``approval_timeout_seconds`` set is a rejection (by ``(nobody)``). A rollout that is
    not held (it already ended) skips this task.

    :param model_name: the model whose rollout is held.
    :param fail_on_rollback: fail the task when, after the approval, the analysis rolls
        the candidate back (a rejection never fails it).
    :param subject: the request's headline (default ``<model>: enter step N?``).
    :param modeldeploy_conn_id: the connection the rollout was started with.

    Other arguments are `ApprovalOperator`'s (``assigned_users``, ``notifiers``...);
    ``options``, ``defaults`` and ``response_timeout`` are fixed (the deadline is the
    engine's, kept in the rollout's state).

    Returns (XCom) the deploy operator's result for the rollout as far as it got, plus
    ``approval``: ``{"approved", "by", "reason", "timed_out", "decision", "step"}``.
    """

    template_fields: Sequence[str] = ("subject", "body", "model_name", "modeldeploy_conn_id")
    template_fields_renderers = {"body": "md"}
    _answer: dict[str, Any] | None = None

    def __init__(
        self,
        *,
        model_name: str,
        fail_on_rollback: bool | str = True,
        subject: str | None = None,
        modeldeploy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        if "response_timeout" in kwargs:
            raise ValueError(
                "ModelStepApprovalOperator waits until the deadline the rollout's strategy "
                "sets; give the strategy `approval_timeout_seconds` instead of "
                "`response_timeout`"
            )
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(
            subject=subject or f"{model_name}: enter the next step?",
            response_timeout=None,
            **kwargs,
        )
        self.model_name = model_name
        self.fail_on_rollback = fail_on_rollback
        self.modeldeploy_conn_id = modeldeploy_conn_id
        self._add_deployments_alias()

    @cached_property
    def hook(self) -> ModelDeployHook:
        return ModelDeployHook(modeldeploy_conn_id=self.modeldeploy_conn_id)

    def _registry(self, deployer: Any) -> ModelRegistry:
        registry = self.hook.get_registry(deployer)
        self._tracking_uri = registry.tracking_uri  # the lineage input's namespace
        return registry

    def _result(self, outcome: RolloutOutcome) -> dict[str, Any]:
        from modeldeploy_provider.operators.modeldeploy import outcome_to_xcom

        self._emit_record(outcome.record)
        if self._answer is None:  # resumed after a bake time: a new instance
            from airflow.sdk import get_current_context

            ti = get_current_context()["ti"]
            self._answer = ti.xcom_pull(task_ids=self.task_id, key=STEP_ANSWER_KEY)
        return {**outcome_to_xcom(outcome), "approval": self._answer}

    def execute(self, context: Context) -> Any:
        import time

        from modeldeploy.progressive.report import step_approval_report
        from modeldeploy.progressive.runner import rollout_status

        with self.hook.get_deployer() as deployer:
            state = rollout_status(deployer, self.model_name)
        if not state.awaiting_approval:
            raise AirflowSkipException(
                f"the rollout of {self.model_name} is not waiting for an approval: "
                f"{state.summary()}"
            )
        step = state.step_index + 2
        if self.subject == f"{self.model_name}: enter the next step?":
            self.subject = f"{self.model_name}: enter step {step} of {len(state.steps)}?"
        self.body = step_approval_report(state)
        self.response_timeout = timedelta(seconds=max(1.0, state.next_check_at - time.time()))
        self.log.info("approval requested:\n%s", self.body)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Apply the answer in the engine; on Approve, drive the rollout on."""
        from modeldeploy.approval import ApprovalDecision
        from modeldeploy.progressive.runner import answer_rollout, rollout_status
        from modeldeploy.rollout import progressive_outcome

        if "error" in event:  # not expected: Reject is the default answer
            return super().execute_complete(context, event)
        decision = self.decision(event)
        with self.hook.get_deployer() as deployer:
            held = rollout_status(deployer, self.model_name)
            if decision.timed_out:  # the engine's own wording and deadline
                waited = held.strategy.approval_timeout_seconds
                decision = ApprovalDecision.no_answer(waited)
            state = answer_rollout(deployer, self.model_name, decision, self._registry(deployer))
            server = deployer.get_model_server(state.server_uuid).info()
            outcome = progressive_outcome(state, None, server, deployer)
        self._answer = {
            **decision.model_dump(mode="json", include={"approved", "by", "reason", "timed_out"}),
            "decision": decision.describe(),
            "step": held.step_index + 2,
        }
        (self.log.info if decision.approved else self.log.warning)(
            "%s %s before step %d", self.model_name, decision.describe(), held.step_index + 2
        )
        if not decision.approved:
            result = self._result(outcome)
            # Pushed first: skipping the downstream tasks on Reject ends the task with an
            # exception.
            context["ti"].xcom_push(key="return_value", value=result)
            super().execute_complete(context, event)
            return result
        context["ti"].xcom_push(key=STEP_ANSWER_KEY, value=self._answer)
        super().execute_complete(context, event)
        return self.follow_rollout(context, outcome)
