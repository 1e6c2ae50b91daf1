"""Continuous deployment of one candidate: gate, register, roll out, move the alias.

Orchestrator skins call `continuous_deploy` and `rollback`; nothing here knows about
Airflow or Prefect. The in-place strategy is the first; canary and shadow rollouts will
be further strategies behind the same outcome type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import DeployResult, ModelDeployer, PendingDeploy
from modeldeploy.errors import ConflictError, InvalidConfigError
from modeldeploy.gate import Gate, GateDecision
from modeldeploy.redaction import get_logger
from modeldeploy.registry import TAG_PREFIX, ModelRegistry
from modeldeploy.server import ModelServerInfo, TransitionCallback
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline, check_timeout

logger = get_logger("modeldeploy")

RolloutAction = Literal["created", "updated", "kept", "restarted", "none", "rolled_back", "deleted"]


class RolloutOutcome(BaseModel):
    """JSON-ready account of what a rollout did and why."""

    model_config = ConfigDict(protected_namespaces=())

    action: RolloutAction
    message: str
    model_name: str
    candidate_version: str | None
    champion_version: str | None
    decision: GateDecision | None
    server: ModelServerInfo | None
    retired: list[str] = []
    pending: PendingDeploy | None = None


def continuous_deploy(
    deployer: ModelDeployer,
    config: ServiceConfig | dict[str, Any],
    metrics: Mapping[str, float],
    gate: Gate | None = None,
    registry: ModelRegistry | None = None,
    replace: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
    wait: bool = True,
) -> RolloutOutcome:
    """Gate the candidate against its rules and the champion, then deploy or keep serving.

    With `wait=False` a passing candidate is written but not waited for: the outcome
    carries `pending`, and `finish_rollout` completes it (waits, retires, promotes).
    """
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline) if registry is not None else None
    config = deployer.parse_config(config)
    gate = gate or Gate()
    champion = registry.get_champion(config.model_name) if registry else None
    decision = gate.evaluate(metrics, champion.metrics if champion else None)
    logger.info("gate for %s: %s", config.model_name, decision.reason)

    candidate_version = None
    if registry is not None:
        if decision.passed:
            deployer.validate_deploy(config)
        candidate = registry.register_candidate(
            config.model_name,
            config.model_uri,
            metrics,
            lineage={
                "pipeline": config.pipeline_name,
                "run_id": config.run_id,
                "step": config.step_name,
            },
            extra_tags={
                f"{TAG_PREFIX}gate": "passed" if decision.passed else "rejected",
                f"{TAG_PREFIX}gate_reason": decision.reason[:5000],
            },
        )
        candidate_version = candidate.version
        config = config.model_copy(update={"model_version": candidate.version})

    if not decision.passed:
        server, restarted = deployer.ensure_serving(config, deadline.remaining(), on_transition)
        if server is None:
            action: RolloutAction = "none"
            message = f"gate {decision.reason}; no model server of {config.model_name} to keep"
        else:
            action = "restarted" if restarted else "kept"
            message = (
                f"gate {decision.reason}; kept the champion "
                f"(version {server.config.model_version}) serving"
                + (" after restarting it" if restarted else "")
            )
        return RolloutOutcome(
            action=action,
            message=message,
            model_name=config.model_name,
            candidate_version=candidate_version,
            champion_version=champion.version if champion else None,
            decision=decision,
            server=server.info() if server else None,
        )

    if not wait:
        pending = deployer.begin_deploy(config, replace=replace)
        server = deployer.get_model_server(pending.server_uuid)
        doing = "updating" if pending.action == "updated" else "creating"
        return RolloutOutcome(
            action=pending.action,
            message=(
                f"gate {decision.reason}; {doing} the model server at "
                f"{server.prediction_url} (not yet ready)"
            ),
            model_name=config.model_name,
            candidate_version=candidate_version,
            champion_version=champion.version if champion else None,
            decision=decision,
            server=server.info(),
            pending=pending,
        )
    result = deployer.deploy(
        config, replace=replace, timeout=deadline.remaining(), on_transition=on_transition
    )
    return _deployed(result, decision, config.model_name, candidate_version, registry)


def finish_rollout(
    deployer: ModelDeployer,
    outcome: RolloutOutcome | dict[str, Any],
    registry: ModelRegistry | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
) -> RolloutOutcome:
    """Second half of `continuous_deploy(wait=False)`, possibly in another process.

    Waits until the server is ready (reverting or removing it on failure, as `deploy`
    does), retires older equivalents and moves the champion alias. An outcome with
    nothing pending (kept, restarted, none) is returned unchanged.
    """
    outcome = RolloutOutcome.model_validate(outcome)
    if outcome.pending is None:
        return outcome
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline) if registry is not None else None
    result = deployer.finish_deploy(outcome.pending, timeout, on_transition)
    return _deployed(
        result, outcome.decision, outcome.model_name, outcome.candidate_version, registry
    )


def _deployed(
    result: DeployResult,
    decision: GateDecision | None,
    model_name: str,
    candidate_version: str | None,
    registry: ModelRegistry | None,
) -> RolloutOutcome:
    if registry is not None and candidate_version is not None:
        registry.promote(model_name, candidate_version)
    where = result.server.prediction_url
    did = (
        "updated the model server in place"
        if result.action == "updated"
        else "created a new model server"
    )
    reason = decision.reason if decision is not None else "passed"
    return RolloutOutcome(
        action=result.action,
        message=f"gate {reason}; {did} at {where}",
        model_name=model_name,
        candidate_version=candidate_version,
        champion_version=candidate_version if registry is not None else None,
        decision=decision,
        server=result.server.info(),
        retired=result.retired,
    )


def rollback(
    deployer: ModelDeployer,
    registry: ModelRegistry,
    model_name: str,
    pipeline_name: str | None = None,
    step_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
) -> RolloutOutcome:
    """Redeploy the previous champion in place, then move the alias back to it."""
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline)
    previous = registry.previous_champion(model_name)
    if previous is None:
        raise InvalidConfigError(
            f"model {model_name} has no previous champion to roll back to; "
            "a rollback needs at least two successful rollouts"
        )
    serving = deployer.find_model_server(
        model_name=model_name, pipeline_name=pipeline_name, pipeline_step_name=step_name
    )
    if serving:
        base = serving[0].config.model_dump(exclude_unset=True)
    else:
        base = {
            "model_name": model_name,
            "pipeline_name": pipeline_name or previous.tags.get(f"{TAG_PREFIX}pipeline"),
            "step_name": step_name or previous.tags.get(f"{TAG_PREFIX}step"),
        }
        base = {k: v for k, v in base.items() if v is not None}
    base.update(model_uri=previous.model_uri, model_version=previous.version)
    config = deployer.parse_config(base)
    result = deployer.deploy(  # validates before writing anything
        config, replace=True, timeout=deadline.remaining(), on_transition=on_transition
    )
    champion = registry.demote_to_previous(model_name)
    return RolloutOutcome(
        action="rolled_back",
        message=(
            f"rolled {model_name} back to version {champion.version} at "
            f"{result.server.prediction_url}"
        ),
        model_name=model_name,
        candidate_version=None,
        champion_version=champion.version,
        decision=None,
        server=result.server.info(),
        retired=result.retired,
    )


def revert_rollout(
    deployer: ModelDeployer,
    outcome: RolloutOutcome,
    registry: ModelRegistry | None = None,
    pipeline_name: str | None = None,
    step_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
) -> RolloutOutcome | None:
    """Undo one `continuous_deploy` after a later check failed (a transaction's rollback).

    Returns None when the rollout changed nothing that serves. Puts the previous champion
    back when there is one; after a model's first rollout, deletes the new server and takes
    the `champion` alias off the failed version. Refuses when someone else has deployed
    since, rather than undoing their work.
    """
    check_timeout(timeout)
    if outcome.action not in ("created", "updated") or outcome.server is None:
        return None
    name = outcome.model_name
    if registry is not None:
        champion = registry.get_champion(name)
        current = champion.version if champion else None
        if current != outcome.champion_version:
            raise ConflictError(
                f"not reverting {name}: its champion is now version {current}, not "
                f"{outcome.champion_version}, so another rollout happened since; roll back "
                "explicitly with `modeldeploy rollback` if that is what you want"
            )
        if registry.previous_champion(name) is not None:
            return rollback(
                deployer, registry, name, pipeline_name, step_name, timeout, on_transition
            )
    if outcome.action != "created":
        raise InvalidConfigError(
            f"cannot revert {name}: no previous champion is recorded in the registry; model "
            f"server {outcome.server.uuid} keeps serving version {outcome.candidate_version}"
        )
    deployer.delete_model_server(outcome.server.uuid, timeout=timeout, force=True)
    if registry is not None and outcome.champion_version is not None:
        registry.retract_champion(name, outcome.champion_version)
    return RolloutOutcome(
        action="deleted",
        message=(
            f"deleted model server {outcome.server.uuid} of {name}: it was the first rollout, "
            "with no previous champion to restore"
        ),
        model_name=name,
        candidate_version=outcome.candidate_version,
        champion_version=None,
        decision=None,
        server=None,
    )
