"""Progressive rollouts (canary, linear, blue/green, shadow) inside `DeployModelOperator`.

The engine walks the rollout from its saved state (`modeldeploy.progressive.runner`); here
the operator only decides where to wait. Deferrable, a bake time is spent in the triggerer
(`DateTimeTrigger`, asynchronous, no worker slot held); on resume the worker advances the
rollout by what is due, writes the step's analysis to the task log, and defers again until
the rollout is promoted, reported or rolled back, or waits for an approval before a step
(then the task ends and a `ModelStepApprovalOperator` asks). Not deferrable, the worker
runs it all.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from airflow.sdk import Context
    from modeldeploy.progressive.state import RolloutState
    from modeldeploy.rollout import RolloutOutcome

#: XCom key of a progressive rollout between deferrals
ROLLOUT_KEY = "progressive_rollout"
#: how long a deferral may last beyond the bake time it waits for
_DEFER_GRACE = timedelta(minutes=10)


class ProgressiveRolloutMixin:
    """Mixed into `DeployModelOperator`; uses its hook, registry and result helpers."""

    fail_on_rollback: bool | str
    task_id: str

    if TYPE_CHECKING:
        hook: Any
        log: Any

        def _registry(self, deployer: Any) -> Any: ...

        def _result(self, outcome: RolloutOutcome) -> dict[str, Any]: ...

        def defer(self, **kwargs: Any) -> NoReturn: ...

    def follow_rollout(self, context: Context, outcome: RolloutOutcome) -> dict[str, Any]:
        """Advance what is due now, then defer until the next check, or finish."""
        from modeldeploy.progressive.runner import advance_rollout

        assert outcome.rollout is not None
        state = outcome.rollout
        seen = len(_analyses(state))
        with self.hook.get_deployer() as deployer:
            registry = self._registry(deployer)
            while not state.done and not state.awaiting_approval:
                wait = state.next_check_at - time.time()
                # the challenger's start-up is short: wait here; a bake time: in the triggerer
                if wait > 0 and state.phase != "starting":
                    break
                time.sleep(max(0.0, wait))
                state = advance_rollout(deployer, state.model_name, registry)
                seen = self._log_analyses(state, seen)
        outcome = outcome.model_copy(update={"rollout": state})
        if state.done or state.awaiting_approval:  # held: a ModelStepApprovalOperator asks
            return self._finish_progressive(outcome)
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        payload = outcome.model_dump(mode="json")
        # also in XCom: dag.test() of Airflow 3.3 drops defer kwargs (apache/airflow#69942)
        context["ti"].xcom_push(key=ROLLOUT_KEY, value=payload)
        self.log.info("%s; next check in the triggerer at %s", state.summary(), _at(state))
        self.defer(
            trigger=DateTimeTrigger(moment=datetime.fromtimestamp(state.next_check_at, UTC)),
            method_name="execute_rollout_step",
            kwargs={"outcome": payload},
            timeout=timedelta(seconds=max(0.0, state.next_check_at - time.time())) + _DEFER_GRACE,
        )
        return {}  # not reached: defer raises

    def execute_rollout_step(
        self, context: Context, event: Any = None, outcome: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after a bake time: advance and log the step's analysis."""
        from modeldeploy.rollout import RolloutOutcome

        if outcome is None:
            outcome = context["ti"].xcom_pull(task_ids=self.task_id, key=ROLLOUT_KEY)
        if not outcome:
            raise AirflowException(
                f"{self.task_id} resumed without its rollout; see `modeldeploy rollout status`"
            )
        return self.follow_rollout(context, RolloutOutcome.model_validate(outcome))

    def _log_analyses(self, state: RolloutState, seen: int) -> int:
        from modeldeploy.progressive.report import render_analysis

        analyses = _analyses(state)
        for index, split, result in analyses[seen:]:
            self.log.info("\n".join(render_analysis(index, split, result)))
        return len(analyses)

    def _finish_progressive(self, outcome: RolloutOutcome) -> dict[str, Any]:
        from modeldeploy.progressive.report import render_state
        from modeldeploy.rollout import progressive_outcome

        assert outcome.rollout is not None
        state = outcome.rollout
        self.log.info("%s", render_state(state))
        with self.hook.get_deployer() as deployer:  # tells the record's namespace or home
            done = progressive_outcome(state, outcome.decision, outcome.server, deployer)
        result = self._result(done)
        fail = self.fail_on_rollback
        if state.phase == "rolled_back" and (fail is True or str(fail).lower() == "true"):
            raise AirflowException(f"{state.message}; the champion serves all traffic")
        return result


def _analyses(state: RolloutState) -> list[tuple[int, str, Any]]:
    return [(r.index, r.step.describe(), a) for r in state.history for a in r.analyses]


def _at(state: RolloutState) -> str:
    return datetime.fromtimestamp(state.next_check_at, UTC).strftime("%H:%M:%S UTC")
