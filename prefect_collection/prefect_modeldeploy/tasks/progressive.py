"""Progressive rollouts (canary, linear, blue/green, shadow) as Prefect tasks.

`start_rollout` gates and registers the candidate and starts it beside the champion;
`follow_rollout` advances it step by step until it is promoted, reported or rolled back,
logging each step's analysis. Both read and write the rollout's saved state, so a flow run
restarted after a crash picks the rollout up where it stopped (`follow_rollout` again).
Inside `prefect.transactions.transaction`, a failure anywhere in it aborts a rollout still
in progress (traffic and alias back on the champion) and undoes one already promoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from modeldeploy.waiting import DEFAULT_TIMEOUT
from prefect import task
from prefect.cache_policies import NO_CACHE

from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock
from prefect_modeldeploy.records import publish_record, publishing_rollbacks
from prefect_modeldeploy.tasks._common import (
    resolve_deployer_block,
    run_lineage,
    run_logger,
    transition_logger,
)

if TYPE_CHECKING:
    from modeldeploy.progressive.state import RolloutState
    from modeldeploy.rollout import RolloutOutcome
    from prefect.transactions import Transaction

#: Key under which `start_rollout` leaves what its rollback hook needs in its transaction.
ROLLOUT_RECORD = "modeldeploy.start_rollout"


class RolloutRolledBack(RuntimeError):
    """The analysis rolled the candidate back; the champion serves all traffic."""


@task(name="start_rollout", cache_policy=NO_CACHE)
def start_rollout(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    strategy: Mapping[str, Any] | str,
    analysis: Mapping[str, Any] | str | None = None,
    metrics: Mapping[str, float] | None = None,
    gate_rules: list[str] | str | None = None,
    config: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    champion_metric: str | None = None,
    min_improvement: float = 0.0,
    direction: Literal["maximize", "minimize"] | None = None,
    allow_signature_change: bool = False,
) -> RolloutOutcome:
    """Gate and register the candidate, then start it beside the serving champion with no
    traffic (`continuous_deploy(strategy=..., wait=False)`). A model's first rollout has no
    champion to compare with and is deployed in place. The gate takes the same arguments
    as `deploy_model`'s (`champion_metric` better in `direction`)."""
    from modeldeploy.rollout import continuous_deploy
    from prefect.transactions import get_transaction

    from prefect_modeldeploy.tasks.deployment import _make_gate

    logger = run_logger()
    block = resolve_deployer_block(deployer)
    service_config = {
        **run_lineage(None, None, None),
        **dict(config or {}),
        "model_name": model_name,
        "model_uri": model_uri,
    }
    with block.deployer() as engine, publishing_rollbacks():
        outcome = continuous_deploy(
            engine,
            service_config,
            metrics or {},
            gate=_make_gate(gate_rules, champion_metric, min_improvement, direction),
            registry=block.get_registry(),
            allow_signature_change=allow_signature_change,
            timeout=timeout,
            on_transition=transition_logger(logger),
            strategy=dict(strategy) if isinstance(strategy, Mapping) else strategy,
            analysis=dict(analysis) if isinstance(analysis, Mapping) else analysis,
            wait=False,
        )
        if outcome.pending is not None:  # the first rollout: in place, finish it here
            from modeldeploy.rollout import finish_rollout

            outcome = finish_rollout(engine, outcome, block.get_registry(), timeout)
    logger.info("%s", outcome.message)
    publish_record(outcome.record)  # rejected, or a first rollout deployed in place
    txn = get_transaction()
    if txn is not None:
        txn.set(ROLLOUT_RECORD, {"deployer": block, "outcome": outcome.model_dump(mode="json")})
    return outcome


@start_rollout.on_rollback
def _abort_on_rollback(txn: Transaction) -> None:
    """The transaction failed: abort a rollout in progress, undo one already promoted."""
    from modeldeploy.progressive.runner import abort_rollout, rollout_status
    from modeldeploy.rollout import RolloutOutcome, revert_rollout, rollback

    record = txn.get(ROLLOUT_RECORD, None)
    if record is None:
        return
    logger = txn.logger or run_logger()
    outcome = RolloutOutcome.model_validate(record["outcome"])
    block: ModelDeployerBlock = record["deployer"]
    registry = block.get_registry()
    with block.deployer() as deployer:
        if outcome.rollout is None:  # first rollout, deployed in place
            reverted = revert_rollout(deployer, outcome, registry)
            if reverted is not None:
                logger.warning("%s", reverted.message)
                publish_record(reverted.record)
            return
        state = rollout_status(deployer, outcome.model_name)
        if not state.done:
            state = abort_rollout(
                deployer, state.model_name, registry, reason="the flow's transaction rolled back"
            )
            logger.warning("%s", state.message)
            publish_record(rollout_record(deployer, state))
        elif state.phase == "succeeded" and state.started_at == outcome.rollout.started_at:
            champion = registry.get_champion(state.model_name)
            if champion is not None and champion.version == state.candidate_version:
                undone = rollback(deployer, registry, state.model_name)
                logger.warning("%s", undone.message)
                publish_record(undone.record)


@task(name="follow_rollout", cache_policy=NO_CACHE)
def follow_rollout(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    fail_on_rollback: bool = True,
    timeout: float | None = None,
) -> RolloutState:
    """Advance the saved rollout of `model_name` until it ends or waits for an approval
    before a step (then answer it with `approve_held_rollout` in the flow and follow
    again), logging every step's analysis; raises `RolloutRolledBack` when the analysis
    rolled it back (unless `fail_on_rollback=False`). Its end is a Prefect event and a
    markdown artifact with the report, headed "Rolled back" when it was."""
    from modeldeploy.progressive.report import latest_analysis, render_state
    from modeldeploy.progressive.runner import run_rollout

    logger = run_logger()
    block = resolve_deployer_block(deployer)
    logged: set[str] = set()

    def on_progress(state: RolloutState) -> None:
        text = latest_analysis(state)
        if text is not None and text not in logged:
            logged.add(text)
            logger.info("%s", text)
        logger.info("%s", state.summary())

    with block.deployer() as engine, publishing_rollbacks():
        state = run_rollout(
            engine, model_name, block.get_registry(), timeout=timeout, on_progress=on_progress
        )
        record = rollout_record(engine, state)
    logger.info("%s", render_state(state))
    publish_record(record)
    if state.phase == "rolled_back" and fail_on_rollback:
        raise RolloutRolledBack(f"{state.message}; the champion serves all traffic")
    if state.phase == "rolled_back":
        logger.warning("rolled back: %s", state.message)
    return state


def rollout_record(engine: Any, state: RolloutState) -> Any:
    """The record of a finished rollout (None while it goes on), with its server's URL."""
    from modeldeploy.errors import ModelDeployError
    from modeldeploy.rollout import progressive_outcome

    try:
        server = engine.get_model_server(state.server_uuid).info()
    except ModelDeployError:
        server = None
    return progressive_outcome(state, None, server, engine).record
