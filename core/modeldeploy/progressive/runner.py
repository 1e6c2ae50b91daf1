"""Walk a progressive rollout one step at a time, from its saved state.

`begin_rollout` checks everything, starts the challenger beside the champion and saves the
state. `advance_rollout` does at most one thing (apply the next split, or judge the step
whose bake time is over) and saves again, so any process can call it whenever
`state.next_check_at` has passed: a loop here (`run_rollout`), an Airflow trigger, a
Prefect task after a restart. `promote_rollout` and `abort_rollout` finish it early.

A step named in the strategy's `approve_before_steps` is not entered on its own: the
rollout rests in `awaiting_approval` (the split of the step that passed stays) until
`approve_rollout` enters it or `reject_rollout` rolls back; no answer by
`state.next_check_at` is a rejection by nobody, applied by the next advance.

Traffic and alias move together: a failed step or an error puts 100 % back on the
champion, removes the challenger, leaves `champion` where it was and tags the rejected
version with the reason; `champion` moves only once the challenger holds 100 %.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from modeldeploy.approval import ApprovalDecision
from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import ModelDeployer
from modeldeploy.errors import (
    ConflictError,
    DeploymentTimeoutError,
    InvalidConfigError,
    ModelDeployError,
    PlatformError,
)
from modeldeploy.progressive.analysis import AnalysisConfig, StepAnalysis, analyse
from modeldeploy.progressive.figures import baseline, service_figures
from modeldeploy.progressive.report import at_utc
from modeldeploy.progressive.state import (
    RolloutState,
    RolloutStore,
    StepRecord,
    load_state,
    store_for,
)
from modeldeploy.progressive.strategies import Strategy, check_supported, parse_strategy
from modeldeploy.registry import ROLLOUT_TAG, TAG_PREFIX, ModelRegistry
from modeldeploy.server import ModelServer, ModelServerInfo
from modeldeploy.traffic import (
    CHALLENGER,
    Capability,
    MetricQueries,
    ServerMetrics,
    TrafficControl,
    TrafficStatus,
    VariantStatus,
)
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline, check_timeout

if TYPE_CHECKING:
    from modeldeploy.records import DeploymentRecord

logger = logging.getLogger("modeldeploy")

ROLLOUT_REASON_TAG = f"{TAG_PREFIX}rollout_reason"
#: the step a rollout was held before when a human answered (with the approval tags)
APPROVAL_STEP_TAG = f"{TAG_PREFIX}approval_step"
_READY_POLL_SECONDS = 0.25
APPLY_TIMEOUT = 30.0
ProgressCallback = Callable[[RolloutState], None]


def check_rollout(
    deployer: ModelDeployer,
    strategy: Strategy | dict[str, Any] | str | None,
    analysis: AnalysisConfig | dict[str, Any] | str | None,
) -> tuple[Strategy, AnalysisConfig]:
    """Parse and check a strategy and its analysis (or just its rules, comma-separated)
    against the flavor; changes nothing."""
    parsed = parse_strategy(strategy)
    check_supported(parsed, deployer.flavor, deployer.capabilities, deployer.why_not)
    if isinstance(analysis, str):
        analysis = {"rules": analysis}
    try:
        config = AnalysisConfig.model_validate(analysis or {})
    except ValueError as exc:
        raise InvalidConfigError(f"invalid rollout analysis: {exc}") from None
    _check_measurable(deployer, parsed, config, deployer.metric_queries)
    return parsed, config


def _check_measurable(
    deployer: ModelDeployer,
    strategy: Strategy,
    config: AnalysisConfig,
    metrics: MetricQueries | None,
) -> None:
    steps = strategy.steps()
    if not steps:  # in_place: no step is analysed, so no rule needs a source
        return
    compares = Capability.SPLIT_AGREEMENT in deployer.capabilities
    config.check_measurable(
        mirrors=any(s.mirror_percent or (compares and s.challenger_percent) for s in steps),
        metrics=metrics,
        live=any(s.challenger_percent or s.mirror_percent for s in steps),
        no_probe=_why_no_probe(deployer),
    )


def metric_queries(deployer: ModelDeployer, control: TrafficControl) -> MetricQueries | None:
    """Where this server's request figures come from (the server may know better than its
    flavor, see `ServerMetrics`)."""
    if isinstance(control, ServerMetrics):
        return control.metric_queries
    return deployer.metric_queries


def _why_no_probe(deployer: ModelDeployer) -> str | None:
    """Why the analysis cannot send its probe to each variant apart (None: it can): the
    flavor's own reason, and which installed flavors can."""
    if Capability.VARIANT_URLS in deployer.capabilities:
        return None
    from modeldeploy.flavors import flavors_with

    why = deployer.why_not.get(
        Capability.VARIANT_URLS, f"the {deployer.flavor} flavor reports no URL per variant"
    )
    others = ", ".join(flavors_with(Capability.VARIANT_URLS))
    return why + (
        f"; a probe works on a flavor whose variants have one ({others})" if others else ""
    )


def traffic_control(deployer: ModelDeployer, server: ModelServer) -> TrafficControl:
    if not isinstance(server, TrafficControl):
        raise InvalidConfigError(
            f"the {deployer.flavor} flavor declares {sorted(deployer.capabilities)} but its "
            f"model server {server.uuid} cannot route traffic; use strategy in_place"
        )
    return server


def begin_rollout(
    deployer: ModelDeployer,
    champion_server: ModelServer,
    config: ServiceConfig,
    strategy: Strategy,
    analysis: AnalysisConfig,
    store: RolloutStore | None = None,
    candidate_version: str | None = None,
    champion_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    registry: ModelRegistry | None = None,
) -> RolloutState:
    """Start the challenger beside `champion_server` with no traffic and save the state.
    (`registry` only tags the candidate if the challenger cannot even be added.)"""
    check_timeout(timeout)
    store = store or store_for(deployer)
    control = traffic_control(deployer, champion_server)
    metrics = metric_queries(deployer, control)
    if metrics is not deployer.metric_queries:  # before anything changes
        _check_measurable(deployer, strategy, analysis, metrics)
    with store.locked(config.model_name):
        existing = store.load(config.model_name)
        if existing is not None and not existing.done:
            raise ConflictError(
                f"a {existing.strategy.kind} rollout of {config.model_name} is in progress "
                f"({existing.summary()}); wait for it, or stop it with `modeldeploy rollout "
                f"abort {config.model_name}`"
            )
        now = time.time()
        state = RolloutState(
            model_name=config.model_name,
            flavor=deployer.flavor,
            server_uuid=str(champion_server.uuid),
            strategy=strategy,
            analysis=analysis,
            candidate_version=candidate_version,
            champion_version=champion_version,
            challenger_config=config.to_record(),
            steps=strategy.steps(),
            started_at=now,
            updated_at=now,
            next_check_at=now,
            ready_by=now + timeout,
            message="starting the challenger beside the champion",
        )
        store.save(state)  # first, so an abort from elsewhere can find a half-started one
        try:
            control.add_challenger(config)
        except Exception as exc:
            _roll_back(deployer, state, registry, f"the challenger did not start: {exc}")
            store.save(state)
            if isinstance(exc, ModelDeployError):
                exc.record = _record(deployer, state)
            raise
        logger.info("%s", state.summary())
        return state


def advance_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
) -> RolloutState:
    """Do what is due now (at most one step) and save; a finished rollout is returned as is.

    An error on the way rolls the rollout back (and is logged) instead of being raised."""
    with _editing(deployer, model_name, registry, store) as state:
        if not state.done and time.time() >= state.next_check_at:
            try:
                _advance(deployer, state, registry)
            except Exception:
                logger.exception("rollout of %s failed", model_name)
                raise
    return state  # also after an error: it rolled the rollout back


@contextlib.contextmanager
def _editing(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None,
    store: RolloutStore | None,
    verb: str | None = None,
    reraise: bool = False,
) -> Iterator[RolloutState]:
    """Load the state under its lock, let the caller change it, save it. An error rolls a
    rollout still running back (traffic and alias on the champion) before it is saved."""
    store = store or store_for(deployer)
    with store.locked(model_name):
        state = load_state(store, model_name)
        if verb is not None:
            _unfinished(state, verb)
        try:
            yield state
        except Exception as exc:
            if not state.done:
                _roll_back(deployer, state, registry, f"error: {exc}")
            store.save(state)
            if reraise:
                raise
            return
        store.save(state)


def run_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> RolloutState:
    """Advance until the rollout is finished or waits for an approval (one whose deadline
    passed is rejected), sleeping until each next check is due."""
    store = store or store_for(deployer)
    deadline = Deadline(check_timeout(timeout)) if timeout is not None else None
    state = load_state(store, model_name)
    seen = state.model_dump_json(exclude={"updated_at"})
    while not state.done:
        if state.awaiting_approval and time.time() < state.next_check_at:
            break  # a person answers, not a clock (past the deadline: rejected below)
        if deadline is not None and deadline.expired:
            state = abort_rollout(deployer, model_name, registry, store, "the rollout timed out")
            error = DeploymentTimeoutError(
                f"progressive rollout of {model_name} did not finish in {timeout:.0f} s; "
                "it was aborted and the champion serves all traffic"
            )
            error.record = _record(deployer, state)
            raise error
        time.sleep(max(0.0, min(state.next_check_at - time.time(), 5.0)))
        state = advance_rollout(deployer, model_name, registry, store)
        now_seen = state.model_dump_json(exclude={"updated_at"})
        if on_progress is not None and now_seen != seen:
            on_progress(state)
        seen = now_seen
    return state


def promote_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
) -> RolloutState:
    """Skip the remaining steps: the challenger takes 100 %, then becomes the champion.
    Raises if that fails (the rollout is then rolled back)."""
    current = load_state(store or store_for(deployer), model_name)
    if (
        current.phase == "starting"
        and not _challenger(_control(deployer, current).traffic_status()).ready
    ):
        raise ConflictError(
            f"the challenger of {model_name} is not ready yet; promote it once "
            "`modeldeploy rollout status` shows a traffic step"
        )
    with _editing(deployer, model_name, registry, store, "promote", reraise=True) as state:
        _promote(deployer, state, registry, "promoted by request, remaining steps skipped")
    return state


def abort_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
    reason: str = "aborted by request",
) -> RolloutState:
    """All traffic back to the champion, challenger removed, alias untouched."""
    with _editing(deployer, model_name, registry, store, "abort", reraise=True) as state:
        _roll_back(deployer, state, registry, reason)
    return state


def approve_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
    by: str | None = None,
    comment: str = "",
) -> RolloutState:
    """Enter the step a held rollout waits before; who and why are tagged on the version.
    Too late (the approval's deadline passed) is a rejection, and raises."""
    decision = ApprovalDecision(approved=True, by=by, reason=comment)
    return answer_rollout(deployer, model_name, decision, registry, store)


def reject_rollout(
    deployer: ModelDeployer,
    model_name: str,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
    by: str | None = None,
    reason: str = "",
) -> RolloutState:
    """Roll a held rollout back (traffic and alias on the champion) and tag who and why."""
    decision = ApprovalDecision(approved=False, by=by, reason=reason)
    return answer_rollout(deployer, model_name, decision, registry, store)


def answer_rollout(
    deployer: ModelDeployer,
    model_name: str,
    decision: ApprovalDecision,
    registry: ModelRegistry | None = None,
    store: RolloutStore | None = None,
) -> RolloutState:
    """Apply a human's answer (or `ApprovalDecision.no_answer`) to a held rollout: what the
    orchestrators call with the answer their approval UI collected."""
    verb = "approve" if decision.approved else "reject"
    with _editing(deployer, model_name, registry, store, verb, reraise=True) as state:
        held = state.awaiting_approval
        late = held and time.time() >= state.next_check_at
        if held:  # (raising in here would roll a running rollout back)
            _answer(deployer, state, registry, _no_answer(state) if late else decision)
    if not held:
        raise ConflictError(
            f"cannot {verb}: the {state.strategy.kind} rollout of {model_name} is not "
            f"waiting for an approval ({state.phase}: {state.message}); `modeldeploy "
            f"rollout abort {model_name}` stops it at any time"
        )
    if late and not decision.timed_out:
        raise ConflictError(
            f"cannot {verb}: nobody answered the approval of {model_name} in time, so it was "
            f"rejected ({state.message})"
        )
    return state


def rollout_status(
    deployer: ModelDeployer, model_name: str, store: RolloutStore | None = None
) -> RolloutState:
    return load_state(store or store_for(deployer), model_name)


# --- one step ----------------------------------------------------------------------------


def _unfinished(state: RolloutState, verb: str) -> RolloutState:
    if state.done:
        raise ConflictError(
            f"cannot {verb}: the {state.strategy.kind} rollout of {state.model_name} already "
            f"ended ({state.phase}: {state.message})"
        )
    return state


def _control(deployer: ModelDeployer, state: RolloutState) -> TrafficControl:
    return traffic_control(deployer, deployer.get_model_server(state.server_uuid))


def _challenger(status: TrafficStatus) -> VariantStatus:
    """The challenger as reported; not listed yet (the platform may still be finishing a
    previous promotion) reads as not ready."""
    found = next((v for v in status.variants if v.name == CHALLENGER), None)
    return found if found is not None else VariantStatus(name=CHALLENGER)


def _advance(deployer: ModelDeployer, state: RolloutState, registry: ModelRegistry | None) -> None:
    if state.awaiting_approval:  # due: the approval's deadline passed unanswered
        _answer(deployer, state, registry, _no_answer(state))
        return
    control = _control(deployer, state)
    now = time.time()
    if state.phase == "starting":
        challenger = _challenger(control.traffic_status())
        if challenger.last_error:
            _roll_back(deployer, state, registry, f"the challenger failed: {challenger.last_error}")
        elif challenger.ready:
            _enter_step(control, state, 0, metric_queries(deployer, control))
        elif now > state.ready_by:
            _roll_back(deployer, state, registry, "the challenger did not become ready in time")
        else:
            state.next_check_at = now + _READY_POLL_SECONDS
        return
    step = state.steps[state.step_index]
    record = state.history[-1]
    status = control.traffic_status()
    result = analyse(
        state.analysis,
        service_figures(
            metric_queries(deployer, control),
            state.analysis,
            status,
            state.baseline,
            now - record.started_at,
        ),
        status,
        now - record.started_at,
        live_challenger=bool(step.challenger_percent or step.mirror_percent),
    )
    record.analyses.append(result)
    logger.info(
        "%s rollout of %s, step %d/%d (%s): %s — %s",
        state.strategy.kind,
        state.model_name,
        state.step_index + 1,
        len(state.steps),
        step.describe(),
        result.verdict,
        result.reason,
    )
    if result.verdict == "failed":
        _roll_back(
            deployer, state, registry, f"step {state.step_index + 1} failed: {result.reason}"
        )
    elif result.verdict == "inconclusive":
        _inconclusive(deployer, state, registry, result, now)
    elif state.step_index + 1 < len(state.steps):
        if state.strategy.holds_before(state.step_index + 1):
            _hold(state, now)
        else:
            _enter_step(control, state, state.step_index + 1, metric_queries(deployer, control))
    elif state.strategy.promotes:
        _promote(deployer, state, registry, f"every step passed; last: {result.reason}")
    else:
        _report(deployer, state, registry, result)


def _hold(state: RolloutState, now: float) -> None:
    """The step passed; rest at its split until a human answers or the deadline passes."""
    following = state.steps[state.step_index + 1]
    state.phase = "awaiting_approval"
    state.next_check_at = now + state.strategy.approval_timeout_seconds
    by = at_utc(state.next_check_at)
    state.message = (
        f"step {state.step_index + 1} passed; awaiting approval to enter step "
        f"{state.step_index + 2} ({following.describe()}) by {by} (no answer: rejected); "
        f"`modeldeploy rollout approve|reject {state.model_name}`"
    )
    logger.info("%s", state.summary())


def _no_answer(state: RolloutState) -> ApprovalDecision:
    return ApprovalDecision.no_answer(state.strategy.approval_timeout_seconds)


def _answer(
    deployer: ModelDeployer,
    state: RolloutState,
    registry: ModelRegistry | None,
    decision: ApprovalDecision,
) -> None:
    """Record a held rollout's answer on the version, then enter the step or roll back."""
    held_before = state.step_index + 1  # 0-based index of the step it waits before
    if registry is not None and state.candidate_version is not None:
        tags = {**decision.tags(), APPROVAL_STEP_TAG: str(held_before + 1)}
        registry.set_version_tags(state.model_name, state.candidate_version, tags)
    (logger.info if decision.approved else logger.warning)(
        "%s before step %d of %s", decision.describe(), held_before + 1, state.model_name
    )
    if not decision.approved:
        where = f"before step {held_before + 1}"
        _roll_back(deployer, state, registry, f"{decision.describe()} ({where})")
        return
    control = _control(deployer, state)
    _enter_step(control, state, held_before, metric_queries(deployer, control))
    state.history[-1].approval = decision


def _inconclusive(
    deployer: ModelDeployer,
    state: RolloutState,
    registry: ModelRegistry | None,
    result: StepAnalysis,
    now: float,
) -> None:
    policy = state.analysis
    started = state.history[-1].started_at
    where = f"step {state.step_index + 1} inconclusive ({result.reason})"
    if policy.on_inconclusive == "extend" and state.extensions < policy.max_extensions:
        state.extensions += 1
        bake = max(state.steps[state.step_index].bake_seconds, policy.recheck_seconds)
        state.next_check_at = now + bake
        state.message = f"{where}; extended ({state.extensions}/{policy.max_extensions})"
    elif policy.on_inconclusive == "wait" and now - started < policy.max_wait_seconds:
        state.next_check_at = now + policy.recheck_seconds
        state.message = f"{where}; waiting for more requests"
    else:
        _roll_back(deployer, state, registry, f"{where}; on_inconclusive={policy.on_inconclusive}")


def _apply(
    control: TrafficControl, percent: int, mirror_percent: int, sticky_header: str | None
) -> TrafficStatus:
    """Ask for a split and return once the platform reports it applied."""
    control.set_traffic(percent, mirror_percent=mirror_percent, sticky_header=sticky_header)
    deadline = Deadline(APPLY_TIMEOUT)
    while True:
        status = control.traffic_status()
        applied = (status.weight_of(CHALLENGER), status.mirror_percent)
        if applied == (percent, mirror_percent):
            return status
        if deadline.expired:
            raise PlatformError(
                f"asked for challenger {percent} % / mirror {mirror_percent} %, the platform "
                f"still routes {applied[0]} % / {applied[1]} % after {APPLY_TIMEOUT:.0f} s"
            )
        time.sleep(_READY_POLL_SECONDS / 10)


def _enter_step(
    control: TrafficControl, state: RolloutState, index: int, metrics: MetricQueries | None
) -> None:
    step = state.steps[index]
    status = _apply(
        control, step.challenger_percent, step.mirror_percent, state.strategy.sticky_header
    )
    state.baseline = baseline(metrics, state.analysis, status)
    now = time.time()
    state.phase = "baking"
    state.step_index = index
    state.extensions = 0
    state.next_check_at = now + step.bake_seconds
    state.history.append(StepRecord(index=index, step=step, started_at=now))
    state.message = f"baking {step.bake_seconds:g} s"
    logger.info("%s", state.summary())


def _promote(
    deployer: ModelDeployer, state: RolloutState, registry: ModelRegistry | None, why: str
) -> None:
    control = _control(deployer, state)
    _apply(control, 100, 0, None)  # champion moves only once the challenger holds 100 %
    control.promote_challenger()
    if registry is not None and state.candidate_version is not None:
        registry.promote(state.model_name, state.candidate_version)
        _tag(deployer, registry, state, "promoted", why)
    _finish(state, "succeeded", f"promoted version {state.candidate_version}: {why}")


def _report(
    deployer: ModelDeployer,
    state: RolloutState,
    registry: ModelRegistry | None,
    result: StepAnalysis,
) -> None:
    _control(deployer, state).remove_challenger()
    challenger = result.figures.get(CHALLENGER, {})
    figures = ", ".join(f"{k} {v:.4g}" for k, v in challenger.items() if v is not None)
    report = f"shadow report: {result.reason} ({figures}); champion unchanged"
    if registry is not None and state.candidate_version is not None:
        _tag(deployer, registry, state, "shadowed", report)
    _finish(state, "reported", report)


def _roll_back(
    deployer: ModelDeployer, state: RolloutState, registry: ModelRegistry | None, reason: str
) -> None:
    """Traffic back first, then the challenger out; the alias never moved, so it stays."""
    problems = []
    try:
        control = _control(deployer, state)
        status = control.traffic_status()
        if status.weight_of(CHALLENGER) or status.mirror_percent:
            _apply(control, 0, 0, None)
        control.remove_challenger()
    except Exception as exc:
        problems.append(f"; putting traffic back failed too: {exc}")
    if registry is not None and state.candidate_version is not None:
        try:
            _tag(deployer, registry, state, "rolled_back", reason)
            registry.mark_rolled_back(
                state.model_name, state.candidate_version, f"{state.strategy.kind}: {reason}"
            )
        except Exception as exc:
            problems.append(f"; tagging the version failed: {exc}")
    logger.warning("rolling back %s: %s", state.model_name, reason)
    _finish(state, "rolled_back", f"rolled back: {reason}" + "".join(problems))


def _tag(
    deployer: ModelDeployer,
    registry: ModelRegistry,
    state: RolloutState,
    outcome: str,
    reason: str,
) -> None:
    """The version's rollout tags, and the record of how it ended (modeldeploy.records)."""
    from modeldeploy.records import record_for_rollout

    assert state.candidate_version is not None
    registry.set_version_tags(
        state.model_name,
        state.candidate_version,
        {ROLLOUT_TAG: f"{state.strategy.kind}:{outcome}", ROLLOUT_REASON_TAG: reason[:5000]},
    )
    record = record_for_rollout(
        state, outcome, reason, deployer=deployer, server=_server_info(deployer, state)
    )
    if record is not None:
        registry.add_record(record)


def _server_info(deployer: ModelDeployer, state: RolloutState) -> ModelServerInfo | None:
    try:
        return deployer.get_model_server(state.server_uuid).info()
    except ModelDeployError:
        return None


def _record(deployer: ModelDeployer, state: RolloutState) -> DeploymentRecord | None:
    """The record of a rollout that ended (None while it goes on), for an error to carry."""
    from modeldeploy.records import record_for_rollout

    server = _server_info(deployer, state)
    return record_for_rollout(state, state.phase, state.message, deployer=deployer, server=server)


def _finish(state: RolloutState, phase: Any, message: str) -> None:
    state.phase = phase
    state.finished_at = time.time()
    state.next_check_at = state.finished_at
    state.message = message
