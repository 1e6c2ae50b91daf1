"""Gate, continuous deployment and rollback as Prefect tasks; each one call into `core`.

`deploy_model` carries an `on_rollback` hook: run it inside `prefect.transactions.transaction`
and a later failure in the same transaction (a failed verification, say) puts the previous
champion back through `modeldeploy.rollout.rollback`.
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
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.gate import Gate, GateDecision
    from modeldeploy.rollout import RolloutOutcome
    from prefect.transactions import Transaction

#: Key under which `deploy_model` leaves what its rollback hook needs in its transaction.
ROLLBACK_RECORD = "modeldeploy.deploy_model"


def _make_gate(
    rules: Gate | list[str] | str | None,
    champion_metric: str | None,
    min_improvement: float,
    direction: Literal["maximize", "minimize"] | None,
) -> Gate:
    from modeldeploy.gate import Gate

    if isinstance(rules, Gate):
        return rules
    return Gate.from_rules(
        rules or [],
        champion_metric=champion_metric,
        min_improvement=min_improvement,
        direction=direction,
    )


@task(name="evaluate_gate", cache_policy=NO_CACHE)
def evaluate_gate(
    metrics: Mapping[str, float],
    rules: list[str] | str | None = None,
    champion_metric: str | None = None,
    min_improvement: float = 0.0,
    direction: Literal["maximize", "minimize"] | None = None,
    champion_metrics: Mapping[str, float] | None = None,
    deployer: ModelDeployerBlock | str | None = None,
    model_name: str | None = None,
) -> GateDecision:
    """Decide from `metrics` whether a candidate may replace the champion.

    `rules` are thresholds such as `"accuracy>=0.9"` or `"log_loss<=0.3"`. With
    `champion_metric`, the candidate must also be no worse than the champion (by
    `min_improvement`) in `direction` ("minimize" when lower is better, "maximize" when
    higher is; inferred only for well-known names such as rmse or accuracy, refused
    otherwise); the champion's metrics are `champion_metrics`, or are read from the
    registry of `deployer` for `model_name`. The decision's reason goes to the run log.
    """
    logger = run_logger()
    gate = _make_gate(rules, champion_metric, min_improvement, direction)
    if champion_metrics is None and champion_metric and deployer is not None and model_name:
        champion = resolve_deployer_block(deployer).get_registry().get_champion(model_name)
        if champion is not None:
            logger.info("champion of %s is version %s", model_name, champion.version)
            champion_metrics = champion.metrics
    decision = gate.evaluate(metrics, champion_metrics)
    (logger.info if decision.passed else logger.warning)("gate %s", decision.reason)
    return decision


@task(name="deploy_model", cache_policy=NO_CACHE)
def deploy_model(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float] | None = None,
    gate_rules: Gate | list[str] | str | None = None,
    champion_metric: str | None = None,
    min_improvement: float = 0.0,
    direction: Literal["maximize", "minimize"] | None = None,
    config: Mapping[str, Any] | None = None,
    allow_signature_change: bool = False,
    register: bool = True,
    replace: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    pipeline_name: str | None = None,
    run_id: str | None = None,
    step_name: str | None = None,
) -> RolloutOutcome:
    """Continuous deployment of one candidate (`modeldeploy.rollout.continuous_deploy`).

    The candidate is gated on `metrics` (`gate_rules`, and the champion when
    `champion_metric` is set, better in `direction`: "minimize" or "maximize", inferred
    only for well-known metric names), registered in the deployer's MLflow registry (`register`),
    then deployed: the newest equivalent model server (same pipeline, step and model name)
    is updated in place and keeps its URL, or a new one is created. When the gate says no,
    the champion keeps serving (restarted if it was down). `config` holds the flavor's own
    fields (e.g. `port` for mlflow, `replicas` for seldon). Pipeline, run and step names
    default to the flow name, flow run id and this task's name. A candidate whose MLflow
    signature breaks the serving model's clients is refused unless `allow_signature_change`.
    """
    from modeldeploy.rollout import continuous_deploy
    from prefect.transactions import get_transaction

    logger = run_logger()
    block = resolve_deployer_block(deployer)
    # Explicit arguments win over `config`, which wins over the run context's defaults.
    explicit = {"pipeline_name": pipeline_name, "run_id": run_id, "step_name": step_name}
    service_config = {
        **run_lineage(None, None, None),
        **dict(config or {}),
        **{k: v for k, v in explicit.items() if v is not None},
        "model_name": model_name,
        "model_uri": model_uri,
    }
    gate = _make_gate(gate_rules, champion_metric, min_improvement, direction)
    registry = block.get_registry() if register else None
    if registry is None and gate.champion_challenger is not None:
        logger.warning("register=False: there is no champion to compare %s with", model_name)

    with block.deployer() as engine, publishing_rollbacks():
        outcome = continuous_deploy(
            engine,
            service_config,
            metrics or {},
            gate=gate,
            registry=registry,
            replace=replace,
            timeout=timeout,
            on_transition=transition_logger(logger),
            allow_signature_change=allow_signature_change,
        )
    (logger.info if outcome.decision is None or outcome.decision.passed else logger.warning)(
        "%s", outcome.message
    )
    publish_record(outcome.record)
    txn = get_transaction()
    if txn is not None:
        txn.set(
            ROLLBACK_RECORD,
            {
                "deployer": block,
                "register": register,
                "timeout": timeout,
                "pipeline_name": service_config.get("pipeline_name"),
                "step_name": service_config.get("step_name"),
                "outcome": outcome.model_dump(mode="json"),
            },
        )
    return outcome


@deploy_model.on_rollback
def _roll_back_deploy(txn: Transaction) -> None:
    """The transaction around `deploy_model` failed: put the previous champion back."""
    from modeldeploy.rollout import RolloutOutcome

    record = txn.get(ROLLBACK_RECORD, None)
    logger = txn.logger or run_logger()
    if record is None:
        return
    outcome = RolloutOutcome.model_validate(record["outcome"])
    block: ModelDeployerBlock = record["deployer"]
    with block.deployer() as deployer:
        _undo(deployer, block, record, outcome, logger)


def _undo(
    deployer: ModelDeployer,
    block: ModelDeployerBlock,
    record: dict[str, Any],
    outcome: RolloutOutcome,
    logger: Any,
) -> None:
    from modeldeploy.rollout import revert_rollout

    reverted = revert_rollout(
        deployer,
        outcome,
        block.get_registry() if record["register"] else None,
        pipeline_name=record["pipeline_name"],
        step_name=record["step_name"],
        timeout=record["timeout"],
        on_transition=transition_logger(logger),
    )
    if reverted is None:
        logger.info(
            "deploy_model did not change what serves %s (%s); nothing to roll back",
            outcome.model_name,
            outcome.action,
        )
    else:
        logger.warning("%s", reverted.message)
        publish_record(reverted.record)


@task(name="rollback_model", cache_policy=NO_CACHE)
def rollback_model(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    pipeline_name: str | None = None,
    step_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RolloutOutcome:
    """Redeploy the previous champion of `model_name` in place and move the `champion` alias
    back (`modeldeploy.rollout.rollback`). `pipeline_name`/`step_name` narrow which model server is
    updated when several serve the same model. Emits a `modeldeploy.model.rolled_back` event
    and a markdown artifact headed "Rolled back"."""
    from modeldeploy.rollout import rollback

    logger = run_logger()
    block = resolve_deployer_block(deployer)
    with block.deployer() as engine:
        outcome = rollback(
            engine,
            block.get_registry(),
            model_name,
            pipeline_name=pipeline_name,
            step_name=step_name,
            timeout=timeout,
            on_transition=transition_logger(logger),
            run_id=run_lineage(None, None, None).get("run_id"),
        )
    logger.info("%s", outcome.message)
    publish_record(outcome.record)
    return outcome
