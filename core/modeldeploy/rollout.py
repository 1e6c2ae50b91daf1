"""Continuous deployment of one candidate: gate, register, roll out, move the alias.

Orchestrator skins call `continuous_deploy` and `rollback`; nothing here knows about
Airflow or Prefect. The in-place strategy is the first; canary and shadow rollouts will
be further strategies behind the same outcome type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modeldeploy.config import ServiceConfig
from modeldeploy.crashpoints import crash_point
from modeldeploy.deployer import DeployResult, ModelDeployer, PendingDeploy
from modeldeploy.errors import ConflictError, InvalidConfigError, ModelDeployError
from modeldeploy.gate import CheckResult, Gate, GateDecision
from modeldeploy.progressive.analysis import AnalysisConfig
from modeldeploy.progressive.state import RolloutState
from modeldeploy.progressive.strategies import InPlace, Strategy
from modeldeploy.reconcile import reconcile_serving, rollout_marker
from modeldeploy.records import DeploymentRecord, build_record, record_for_rollout
from modeldeploy.redaction import get_logger
from modeldeploy.registry import GATE_TAG, ROLLOUT_TAG, TAG_PREFIX, ModelRegistry
from modeldeploy.server import ModelServerInfo, TransitionCallback
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline, check_timeout

logger = get_logger("modeldeploy")

RolloutAction = Literal[
    "created",
    "updated",
    "kept",
    "restarted",
    "none",
    "rolled_back",
    "deleted",
    "progressing",
    "promoted",
    "reported",
]


class RolloutOutcome(BaseModel):
    """JSON-ready account of what a rollout did and why (fields: docs/concepts.md)."""

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
    #: what reconciling serving with `champion` did first (after an interrupted rollout)
    reconciled: list[str] = []
    #: a progressive rollout's state (strategy other than in_place), see modeldeploy.progressive
    rollout: RolloutState | None = None
    #: what this did to the model, as kept in the registry's history (modeldeploy.records);
    #: None while a rollout is still in progress
    record: DeploymentRecord | None = None


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
    allow_signature_change: bool = False,
    strategy: Strategy | dict[str, Any] | str | None = None,
    analysis: AnalysisConfig | dict[str, Any] | str | None = None,
) -> RolloutOutcome:
    """Gate the candidate against its rules and the champion, then deploy or keep serving.

    Serving and `champion` are reconciled first (`reconcile_serving`). A passing candidate
    whose signature would break the serving model's clients is refused
    (`SignatureChangeError`) before anything is registered or written, unless
    `allow_signature_change`. With `wait=False` a passing candidate is written but not
    waited for: the outcome carries `pending`, and `finish_rollout` completes it (waits,
    retires, promotes). A `strategy` other than in_place (canary, linear, blue_green,
    shadow) runs the candidate beside the serving model and moves traffic step by step with
    an `analysis` at each; with `wait=False` the outcome carries `rollout` for
    `advance_rollout`.
    """
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline) if registry is not None else None
    config = deployer.parse_config(config)
    from modeldeploy.progressive import runner

    progressive = runner.check_rollout(deployer, strategy, analysis)  # before any change
    gate = gate or Gate()
    reconciled: list[str] = []
    if registry is not None:
        reconciled = reconcile_serving(
            deployer,
            registry,
            config.model_name,
            config.pipeline_name,
            config.step_name,
            deadline.remaining(),
            on_transition,
        ).actions
    champion = registry.get_champion(config.model_name) if registry else None
    decision = gate.evaluate(metrics, champion.metrics if champion else None)
    if decision.passed and replace:
        decision = _check_signature(deployer, config, registry, decision, allow_signature_change)
    logger.info("gate for %s: %s", config.model_name, decision.reason)

    candidate_version = None
    if registry is not None:
        if decision.passed:
            deployer.validate_deploy(config)
        marker = {ROLLOUT_TAG: rollout_marker(timeout, owned_by_this_process=wait)}
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
                GATE_TAG: "passed" if decision.passed else "rejected",
                f"{TAG_PREFIX}gate_reason": decision.reason[:5000],
                **(marker if decision.passed else {}),
            },
        )
        candidate_version = candidate.version
        config = config.model_copy(update={"model_version": candidate.version})
        crash_point("registered")

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
        info = server.info() if server else None
        record = build_record(
            "rejected",
            config.model_name,
            version=candidate_version,
            serving_version=info.model_version if info else None,
            previous_version=champion.version if champion else None,
            reason=decision.reason,
            deployer=deployer,
            server=info,
            decision=decision,
            run_id=config.run_id,
        )
        _keep(registry, record)
        return RolloutOutcome(
            action=action,
            message=message,
            model_name=config.model_name,
            candidate_version=candidate_version,
            champion_version=champion.version if champion else None,
            decision=decision,
            server=info,
            reconciled=reconciled,
            record=record,
        )

    if not isinstance(progressive[0], InPlace):
        serving = deployer.find_model_server(
            running=True,
            pipeline_name=config.pipeline_name,
            pipeline_step_name=config.step_name,
            model_name=config.model_name,
        )
        if serving:  # else the first rollout has no champion to compare with: in place
            state = runner.begin_rollout(
                deployer,
                serving[0],
                config,
                *progressive,
                candidate_version=candidate_version,
                champion_version=champion.version if champion else None,
                timeout=timeout,
                registry=registry,
            )
            if wait:
                state = runner.run_rollout(deployer, config.model_name, registry, timeout=None)
            return progressive_outcome(state, decision, serving[0].info(), deployer)

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
            reconciled=reconciled,
        )
    try:
        result = deployer.deploy(
            config, replace=replace, timeout=deadline.remaining(), on_transition=on_transition
        )
    except ModelDeployError as exc:
        previous = champion.version if champion else None
        failed = (config.model_name, candidate_version or config.model_version, config.run_id)
        exc.record = _tag_failed(deployer, registry, failed, previous, exc, config)
        raise
    crash_point("ready")
    previous = champion.version if champion else None
    outcome = _deployed(deployer, result, decision, candidate_version, previous, registry)
    return outcome.model_copy(update={"reconciled": reconciled})


def _tag_failed(
    deployer: ModelDeployer,
    registry: ModelRegistry | None,
    failed: tuple[str, str | None, str | None],
    previous: str | None,
    error: Exception,
    where: ServiceConfig | tuple[str | None, str | None],
) -> DeploymentRecord:
    """The record of a candidate (model, version, run) whose rollout failed and was undone,
    kept in the registry when there is one; never hides the failure. `where` (a config,
    or its pipeline and step) finds the server that serves now, for its URL and version."""
    name, version, run_id = failed
    pipeline, step = (
        (where.pipeline_name, where.step_name) if isinstance(where, ServiceConfig) else where
    )
    serving = _serving(deployer, name, pipeline, step)
    record = build_record(
        "rolled_back",
        name,
        version=version,
        serving_version=serving.model_version if serving else previous,
        previous_version=previous,
        reason=f"its rollout failed: {error}",
        deployer=deployer,
        server=serving,
        run_id=run_id,
    )
    if version is not None:
        _keep(registry, record)
    return record


def _serving(
    deployer: ModelDeployer, model_name: str, pipeline: str | None, step: str | None
) -> ModelServerInfo | None:
    """The server that serves the model now, if any; a failing lookup is no reason to hide
    the failure being reported."""
    try:
        found = deployer.find_model_server(
            running=True, model_name=model_name, pipeline_name=pipeline, pipeline_step_name=step
        )
    except ModelDeployError as exc:
        logger.warning("could not look up what serves %s now: %s", model_name, exc)
        return None
    return found[0].info() if found else None


def _keep(registry: ModelRegistry | None, record: DeploymentRecord) -> None:
    """Add `record` to the registry's history; a registry that fails then is logged, since
    what the record tells has happened already (and the outcome still carries it)."""
    if registry is None:
        return
    try:
        registry.add_record(record)
    except Exception as exc:
        logger.warning("could not record in the registry that %s: %s", record.summary(), exc)


def _check_signature(
    deployer: ModelDeployer,
    config: ServiceConfig,
    registry: ModelRegistry | None,
    decision: GateDecision,
    allow_change: bool,
) -> GateDecision:
    """Refuse a candidate that breaks the serving model's clients; note additive changes."""
    from modeldeploy.signature import SignatureChangeError, check_compatible

    serving = deployer.find_model_server(
        pipeline_name=config.pipeline_name,
        pipeline_step_name=config.step_name,
        model_name=config.model_name,
    )
    if not serving or serving[0].config.model_uri == config.model_uri:
        return decision
    serving_uri = serving[0].config.model_uri
    tracking_uri = registry.tracking_uri if registry else getattr(deployer, "tracking_uri", None)
    report = check_compatible(serving_uri, config.model_uri, tracking_uri)
    if not report.compatible and not allow_change:
        raise SignatureChangeError(
            f"refusing to roll out {config.model_uri} in place of {serving_uri} "
            f"({config.model_name}, model server {serving[0].uuid}): its "
            f"{report.note}. Its clients would fail; pass allow_signature_change=True once "
            "they are updated, or deploy it as a new model",
            report,
        )
    note = report.note if report.compatible else f"{report.note} (allowed)"
    check = CheckResult(name="signature", passed=True, detail=note)
    return decision.model_copy(
        update={"reason": f"{decision.reason}; {note}", "checks": [*decision.checks, check]}
    )


def progressive_outcome(
    state: RolloutState,
    decision: GateDecision | None,
    server: ModelServerInfo | None,
    deployer: ModelDeployer | None = None,
) -> RolloutOutcome:
    """The outcome of a progressive rollout as far as it got (with its record once done;
    `deployer` tells the record's namespace or home)."""
    action: RolloutAction = {
        "succeeded": "promoted",
        "rolled_back": "rolled_back",
        "reported": "reported",
    }.get(state.phase, "progressing")  # type: ignore[assignment]
    promoted = state.phase == "succeeded"
    return RolloutOutcome(
        action=action,
        message=state.summary(),
        model_name=state.model_name,
        candidate_version=state.candidate_version,
        champion_version=state.candidate_version if promoted else state.champion_version,
        decision=decision,
        server=server,
        rollout=state,
        record=record_for_rollout(
            state,
            state.phase,
            state.message,
            deployer=deployer,
            server=server,
            decision=decision,
            at=datetime.fromtimestamp(state.finished_at or state.updated_at, UTC),
        ),
    )


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
    if outcome.rollout is not None and not outcome.rollout.done:
        from modeldeploy.progressive.runner import run_rollout

        state = run_rollout(deployer, outcome.model_name, registry, timeout=timeout)
        return progressive_outcome(state, outcome.decision, outcome.server, deployer)
    if outcome.pending is None:
        return outcome
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline) if registry is not None else None
    try:
        result = deployer.finish_deploy(outcome.pending, deadline.remaining(), on_transition)
    except ModelDeployError as exc:
        info = outcome.server
        run_id = info.run_id if info else None
        failed = (outcome.model_name, outcome.candidate_version, run_id)
        where = (info.pipeline_name, info.step_name) if info else (None, None)
        exc.record = _tag_failed(deployer, registry, failed, outcome.champion_version, exc, where)
        raise
    serving = result.server.config.model_version
    if outcome.candidate_version is not None and serving != outcome.candidate_version:
        raise ConflictError(
            f"model server {result.server.uuid} of {outcome.model_name} now serves version "
            f"{serving}, not the candidate {outcome.candidate_version}: another run changed "
            "it meanwhile, so the champion alias was not moved"
        )
    return _deployed(
        deployer,
        result,
        outcome.decision,
        outcome.candidate_version,
        outcome.champion_version,
        registry,
    ).model_copy(update={"reconciled": outcome.reconciled})


def _deployed(
    deployer: ModelDeployer,
    result: DeployResult,
    decision: GateDecision | None,
    candidate_version: str | None,
    previous: str | None,
    registry: ModelRegistry | None,
) -> RolloutOutcome:
    model_name = result.server.config.model_name
    if registry is not None and candidate_version is not None:
        registry.promote(model_name, candidate_version)
        crash_point("promoted")
    where = result.server.prediction_url
    did = (
        "updated the model server in place"
        if result.action == "updated"
        else "created a new model server"
    )
    reason = decision.reason if decision is not None else "passed"
    info = result.server.info()
    record = build_record(
        "deployed",
        model_name,
        version=candidate_version or info.model_version,
        serving_version=candidate_version or info.model_version,
        previous_version=previous,
        reason=f"gate {reason}; {did}",
        deployer=deployer,
        server=info,
        decision=decision,
    )
    _keep(registry, record)
    return RolloutOutcome(
        action=result.action,
        message=f"gate {reason}; {did} at {where}",
        model_name=model_name,
        candidate_version=candidate_version,
        champion_version=candidate_version if registry is not None else None,
        decision=decision,
        server=info,
        retired=result.retired,
        record=record,
    )


def rollback(
    deployer: ModelDeployer,
    registry: ModelRegistry,
    model_name: str,
    pipeline_name: str | None = None,
    step_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
    reason: str = "rolled back on request",
    run_id: str | None = None,
) -> RolloutOutcome:
    """Redeploy the champion before the one serving, then move the alias back to it.

    Serving and `champion` are reconciled first, so the target is always the version
    before the one that really serves. The version taken out is tagged with `reason`;
    `run_id` names the pipeline run that asked, in the registry's history.
    """
    deadline = Deadline(check_timeout(timeout))
    registry = registry.bounded(deadline)
    reconciled = reconcile_serving(
        deployer,
        registry,
        model_name,
        pipeline_name,
        step_name,
        deadline.remaining(),
        on_transition,
    ).actions
    current = registry.get_champion(model_name)
    previous = registry.version_before(model_name, current.version) if current else None
    if current is None or previous is None:
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
    message = (
        f"rolled {model_name} back to version {champion.version} (from version "
        f"{current.version}) at {result.server.prediction_url}"
    )
    info = result.server.info()
    record = build_record(
        "rolled_back",
        model_name,
        version=current.version,
        serving_version=champion.version,
        previous_version=current.version,
        reason=f"{reason}: {message}",
        deployer=deployer,
        server=info,
    ).model_copy(update={"run_id": run_id})  # the run that asked, not the server's last
    registry.add_record(record)
    return RolloutOutcome(
        action="rolled_back",
        message=message,
        model_name=model_name,
        candidate_version=None,
        champion_version=champion.version,
        decision=None,
        server=info,
        retired=result.retired,
        reconciled=reconciled,
        record=record,
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
                deployer,
                registry,
                name,
                pipeline_name,
                step_name,
                timeout,
                on_transition,
                reason="a check after its rollout failed",
            )
    if outcome.action != "created":
        raise InvalidConfigError(
            f"cannot revert {name}: no previous champion is recorded in the registry; model "
            f"server {outcome.server.uuid} keeps serving version {outcome.candidate_version}"
        )
    deployer.delete_model_server(outcome.server.uuid, timeout=timeout, force=True)
    record = build_record(
        "rolled_back",
        name,
        version=outcome.candidate_version,
        serving_version=None,
        previous_version=None,
        reason=f"a check after its rollout failed; model server {outcome.server.uuid} was deleted",
        deployer=deployer,
        server=outcome.server,
    )
    if registry is not None and outcome.champion_version is not None:
        registry.retract_champion(name, outcome.champion_version)
        registry.add_record(record)
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
        record=record,
    )
