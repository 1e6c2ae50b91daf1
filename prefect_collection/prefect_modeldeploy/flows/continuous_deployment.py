"""A ready-made flow: gate, deploy and verify one candidate, rolling back on a failed check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from modeldeploy.waiting import DEFAULT_TIMEOUT
from prefect import flow
from prefect.transactions import transaction

from prefect_modeldeploy.approval import (
    DEFAULT_POLL_INTERVAL,
    approve_held_rollout,
    request_approval,
)
from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock
from prefect_modeldeploy.tasks import (
    deploy_model,
    evaluate_gate,
    follow_rollout,
    start_rollout,
    verify_predictions,
)
from prefect_modeldeploy.tasks._common import resolve_deployer_block

if TYPE_CHECKING:
    from modeldeploy.approval import ApprovalDecision
    from modeldeploy.rollout import RolloutOutcome


@flow(name="modeldeploy-continuous-deployment")
def continuous_deployment(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float],
    gate_rules: list[str] | None = None,
    champion_metric: str | None = None,
    min_improvement: float = 0.0,
    direction: Literal["maximize", "minimize"] | None = None,
    verification_data: Any = None,
    expected_predictions: Sequence[Any] | None = None,
    min_live_accuracy: float | None = None,
    tolerance: float = 0.0,
    rel_tolerance: float = 0.0,
    config: Mapping[str, Any] | None = None,
    pipeline_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    allow_signature_change: bool = False,
    strategy: Mapping[str, Any] | str | None = None,
    analysis: Mapping[str, Any] | str | None = None,
    require_approval: bool = False,
    approval_timeout: float | None = None,
    approval_poll_interval: int = DEFAULT_POLL_INTERVAL,
) -> RolloutOutcome:
    """Deploy `model_uri` if it passes the gate, then check the live server with
    `verification_data`; both run in one transaction, so a failed check rolls the model
    server and the `champion` alias back to the previous champion. Numeric predictions
    match `expected_predictions` within `tolerance` (absolute) or `rel_tolerance`
    (relative); labels match exactly.

    With `champion_metric`, `direction` says which way it is better ("minimize" for a loss
    or an error, "maximize" for a score); it is inferred only for well-known metric names
    and an unknown metric without it is refused before anything changes.

    With a `strategy` (canary, linear, blue_green, shadow) the candidate takes traffic step
    by step with an `analysis` at each; a failed step rolls it back, and so does any
    failure later in the transaction (a rollout still running is aborted).

    With `require_approval`, a candidate that passes the gate waits for a human: the flow
    run pauses with the champion/challenger report (`request_approval`). Reject, or no
    answer within `approval_timeout` seconds (default 24 h), keeps the champion serving and tags the
    candidate rejected; the flow then returns action `kept` (or `none`). An approval is
    tagged on the version the deploy registers (who, why, when).

    A `strategy` with `approve_before_steps` (e.g. `{"kind": "canary", "percents": [10, 50],
    "approve_before_steps": [2]}`) also pauses the run before each of those steps, with the
    rollout's report so far (`approve_held_rollout`): approve enters the step; reject, or no
    answer within the strategy's `approval_timeout_seconds`, rolls the rollout back (traffic
    and alias on the champion) and the flow returns action `rolled_back`."""
    approval = None
    if require_approval:
        approval, rejected = _ask_for_approval(
            deployer,
            model_name,
            model_uri,
            metrics,
            gate_rules,
            champion_metric,
            min_improvement,
            direction,
            approval_timeout,
            approval_poll_interval,
        )
        if rejected is not None:
            return rejected
    with transaction():
        if strategy is not None and strategy != "in_place":
            lineage = {"pipeline_name": pipeline_name} if pipeline_name else {}
            outcome = start_rollout(
                deployer,
                model_name,
                model_uri,
                strategy,
                analysis=analysis,
                metrics=metrics,
                gate_rules=gate_rules,
                config={**dict(config or {}), **lineage},
                timeout=timeout,
                champion_metric=champion_metric,
                min_improvement=min_improvement,
                direction=direction,
                allow_signature_change=allow_signature_change,
            )
            if outcome.rollout is not None:
                from modeldeploy.rollout import progressive_outcome

                state = follow_rollout(deployer, model_name)
                while state.awaiting_approval:  # approve_before_steps: a human answers
                    state = approve_held_rollout(deployer, model_name, approval_poll_interval)
                    if not state.done:
                        state = follow_rollout(deployer, model_name)
                with resolve_deployer_block(deployer).deployer() as engine:  # record's scope
                    outcome = progressive_outcome(state, outcome.decision, outcome.server, engine)
        else:
            outcome = deploy_model(
                deployer,
                model_name,
                model_uri,
                metrics=metrics,
                gate_rules=gate_rules,
                champion_metric=champion_metric,
                min_improvement=min_improvement,
                direction=direction,
                config=config,
                pipeline_name=pipeline_name,
                timeout=timeout,
                allow_signature_change=allow_signature_change,
            )
        verify = outcome.action != "rolled_back"  # a rejected step left the champion
        if verify and outcome.server is not None and verification_data is not None:
            verify_predictions(
                deployer,
                outcome,
                verification_data,
                expected=expected_predictions,
                min_accuracy=min_live_accuracy,
                tolerance=tolerance,
                rel_tolerance=rel_tolerance,
            )
    if approval is not None and outcome.candidate_version is not None:
        from modeldeploy.approval import record_approval

        registry = resolve_deployer_block(deployer).get_registry()
        record_approval(registry, model_name, approval, version=outcome.candidate_version)
    return outcome


def _ask_for_approval(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float],
    gate_rules: list[str] | None,
    champion_metric: str | None,
    min_improvement: float,
    direction: Literal["maximize", "minimize"] | None,
    timeout: float | None,
    poll_interval: int,
) -> tuple[ApprovalDecision | None, RolloutOutcome | None]:
    """The gate first (a candidate it rejects needs nobody's approval), then the reviewer.
    Returns the answer, and what a rejection left serving (None: go on with the deploy)."""
    gate = evaluate_gate(
        metrics,
        gate_rules,
        champion_metric,
        min_improvement,
        direction,
        deployer=deployer,
        model_name=model_name,
    )
    if not gate.passed:
        return None, None  # the deploy keeps the champion and says why
    decision = request_approval(
        deployer, model_name, model_uri, metrics, gate, timeout, poll_interval
    )
    if decision.approved:
        return decision, None
    from modeldeploy.approval import rejected_outcome

    block = resolve_deployer_block(deployer)
    with block.deployer() as engine:
        return decision, rejected_outcome(engine, model_name, decision, block.get_registry(), gate)
