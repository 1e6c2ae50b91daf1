"""A human approval inside a flow run: the report as an artifact, the answer as run input.

Two places ask: `request_approval` between the gate and the rollout, and
`approve_held_rollout` between canary steps (a strategy with `approve_before_steps`).

`request_approval` pauses the flow run (`pause_flow_run(wait_for_input=ApprovalInput)`);
the Prefect UI then offers *Resume* with a form showing the champion/challenger report
(`modeldeploy.approval.approval_report`, also saved as a markdown artifact) and the fields
*approve*, *reason* and *reviewer*. Approve: the flow goes on. Reject, or no answer before
`timeout`: the candidate is rejected, registered with the tags who/why/when, and the
champion keeps serving. Pausing blocks the flow's process; use `suspend_flow_run` with a
deployment if the wait must free the worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prefect.input import RunInput
from pydantic import Field

from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock
from prefect_modeldeploy.tasks._common import resolve_deployer_block, run_lineage, run_logger

if TYPE_CHECKING:
    from modeldeploy.approval import ApprovalDecision
    from modeldeploy.gate import GateDecision
    from modeldeploy.progressive.state import RolloutState

#: seconds between two looks at whether the flow run was resumed (Prefect's own default)
DEFAULT_POLL_INTERVAL = 10


class ApprovalInput(RunInput):
    """What the reviewer fills in on the flow run's Resume form."""

    approve: bool = Field(
        default=False, description="Tick to deploy the candidate; leave unticked to reject it"
    )
    reason: str = Field(default="", description="Why; recorded on the model version")
    reviewer: str = Field(default="", description="Your name; recorded on the model version")


def request_approval(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float] | None = None,
    gate: GateDecision | None = None,
    timeout: float | None = None,
    poll_interval: int = DEFAULT_POLL_INTERVAL,
) -> ApprovalDecision:
    """Pause this flow run until a reviewer approves or rejects `model_uri`.

    Call it from a flow (not a task). The report goes to a markdown artifact
    (`<model>-approval`) and onto the Resume form. A rejection, or no answer within
    `timeout` seconds (default 24 h), registers the candidate in the registry tagged
    rejected.
    """
    from modeldeploy.approval import (
        DEFAULT_APPROVAL_TIMEOUT_SECONDS,
        approval_report,
        record_approval,
    )

    timeout = DEFAULT_APPROVAL_TIMEOUT_SECONDS if timeout is None else timeout
    logger = run_logger()
    block = resolve_deployer_block(deployer)
    registry = block.get_registry()
    report = approval_report(
        model_name,
        metrics,
        model_uri=model_uri,
        champion=registry.get_champion(model_name),
        gate=gate,
        timeout_seconds=timeout,
    )
    decision = _ask(
        report, _artifact_key(model_name), f"approval of {model_name}", timeout, poll_interval
    )
    (logger.info if decision.approved else logger.warning)("%s %s", model_name, decision.describe())
    if not decision.approved:
        lineage = run_lineage(None, None, None)
        record_approval(
            registry,
            model_name,
            decision,
            model_uri=model_uri,
            metrics=metrics,
            lineage={"pipeline": lineage.get("pipeline_name"), "run_id": lineage.get("run_id")},
        )
    return decision


def approve_held_rollout(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    poll_interval: int = DEFAULT_POLL_INTERVAL,
) -> RolloutState:
    """Pause this flow run while the rollout of `model_name` waits for approval before a
    step, then apply the answer: approve enters the step, reject (or no answer by the
    strategy's `approval_timeout_seconds`) rolls the rollout back with the alias untouched.
    Either way the answer is tagged on the version. Call it from a flow when
    `follow_rollout` returns a state with `awaiting_approval`; returns the new state."""
    import math
    import time

    from modeldeploy.approval import ApprovalDecision
    from modeldeploy.progressive.report import step_approval_report
    from modeldeploy.progressive.runner import answer_rollout, rollout_status

    block = resolve_deployer_block(deployer)
    with block.deployer() as engine:
        state = rollout_status(engine, model_name)
        if not state.awaiting_approval:
            return state
        step = state.step_index + 2
        remaining = max(1.0, state.next_check_at - time.time())
        key = f"{_artifact_key(model_name)}-step-{step}"
        decision = _ask(
            step_approval_report(state),
            key,
            f"approval of step {step} of {model_name}",
            math.ceil(remaining),
            poll_interval,
            no_answer=ApprovalDecision.no_answer(state.strategy.approval_timeout_seconds),
        )
        state = answer_rollout(engine, model_name, decision, block.get_registry())
        if state.done:  # rejected: its end is an event and an artifact, as in follow_rollout
            from prefect_modeldeploy.records import publish_record
            from prefect_modeldeploy.tasks.progressive import rollout_record

            publish_record(rollout_record(engine, state))
    run_logger().info("%s", state.summary())
    return state


def _ask(
    report: str,
    key: str,
    description: str,
    timeout: float,
    poll_interval: int,
    no_answer: ApprovalDecision | None = None,
) -> ApprovalDecision:
    """The report as a markdown artifact and on the Resume form; the reviewer's answer, or
    `no_answer` (default: rejected for no answer within `timeout`) when none came."""
    from modeldeploy.approval import ApprovalDecision
    from prefect.artifacts import create_markdown_artifact
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    create_markdown_artifact(report, key=key, description=description)
    run_logger().info("waiting for the %s (answer on the flow run's Resume form)", description)
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=report),
            timeout=int(timeout),
            poll_interval=poll_interval,
        )
    except FlowPauseTimeout:
        _run_on()
        return no_answer or ApprovalDecision.no_answer(timeout)
    return ApprovalDecision(
        approved=answer.approve, reason=answer.reason, by=answer.reviewer or None
    )


def _run_on() -> None:
    """Back to Running after an unanswered pause, so the flow finishes as a rejection
    (Prefect would otherwise fail a run that completes while still paused)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.states import Running

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(context.flow_run.id, Running(), force=True)


def _artifact_key(model_name: str) -> str:
    """Artifact keys take lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") + "-approval"
