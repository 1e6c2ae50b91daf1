"""`require_approval` in the ready-made flow: the run pauses for a reviewer's input.

The flow runs in a thread against the test harness's API; the test answers the way the
Resume form does (`resume_flow_run` with run input), or lets the pause time out.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from prefect_modeldeploy.flows import continuous_deployment

from tests.prefect.helpers import flow_run_id, run_logs

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.timeout(300)]

MODEL = "iris"
#: bound on each wait; never the thing under test
WAIT = 180.0


class FlowInThread:
    """`continuous_deployment(...)` in a thread, its final state kept."""

    def __init__(self, **kwargs: Any) -> None:
        self.state: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs: Any) -> None:
        try:
            self.state = continuous_deployment(**kwargs, return_state=True)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> Any:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), f"the flow did not finish in {WAIT:g} s"
        assert self.error is None, self.error
        return self.state


def _paused_run(started: float) -> Any:
    """The flow run that paused (polls the API: the run is in another thread)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + WAIT
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(limit=20)
            paused = [
                r
                for r in runs
                if r.state is not None
                and r.state.is_paused()
                and r.state.state_details.run_input_keyset
                and r.created is not None
                and r.created.timestamp() >= started - 5
            ]
            if paused:
                return paused[0]
            time.sleep(0.25)
    pytest.fail(f"no flow run paused for approval in {WAIT:g} s")


def _report_artifact(run_id: Any, key: str = f"{MODEL}-approval") -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return next(a.data for a in artifacts if a.key == key)


def test_reject_keeps_the_champion_and_tags_the_candidate(
    mlflow_block: Any, saved_models: Any
) -> None:
    from prefect.flow_runs import resume_flow_run

    started = time.time()
    run = FlowInThread(
        deployer=mlflow_block,
        model_name=MODEL,
        model_uri=str(saved_models.second),
        metrics={"accuracy": 0.97},
        gate_rules=["accuracy>=0.9"],
        require_approval=True,
        approval_poll_interval=1,
    )
    paused = _paused_run(started)
    report = _report_artifact(paused.id)
    assert "| accuracy | 0.97 |  |" in report
    assert "**Gate passed.**" in report
    assert "No answer within 24 h counts as **Reject**." in report
    resume_flow_run(
        paused.id, run_input={"approve": False, "reason": "segment B drifts", "reviewer": "alice"}
    )

    state = run.finish()
    assert state.is_completed()
    outcome = state.result()
    assert outcome.action == "none"
    assert outcome.message.startswith("approval rejected by alice: segment B drifts;")
    registry = mlflow_block.get_registry()
    assert registry.get_champion(MODEL) is None
    tags = registry.get_version(MODEL, "1").tags
    assert tags["modeldeploy.approval"] == "rejected"
    assert tags["modeldeploy.approval_by"] == "alice"
    assert tags["modeldeploy.approval_reason"] == "segment B drifts"
    assert mlflow_block.get_deployer().find_model_server() == []
    assert "iris rejected by alice: segment B drifts" in "\n".join(run_logs(flow_run_id(state)))


def test_no_answer_before_the_timeout_is_a_rejection(mlflow_block: Any, saved_models: Any) -> None:
    state = continuous_deployment(
        mlflow_block,
        MODEL,
        str(saved_models.second),
        metrics={"accuracy": 0.97},
        require_approval=True,
        approval_timeout=2,
        approval_poll_interval=1,
        return_state=True,
    )
    assert state.is_completed()
    outcome = state.result()
    assert outcome.action == "none"
    assert outcome.message.startswith(
        "approval rejected: no answer within 2 s; an unanswered approval is a rejection"
    )
    tags = mlflow_block.get_registry().get_version(MODEL, "1").tags
    assert tags["modeldeploy.approval"] == "rejected"
    assert tags["modeldeploy.approval_by"] == "(nobody)"


def test_a_canary_step_waits_for_approval_then_promotes(
    mlflow_block: Any, saved_models: Any
) -> None:
    from prefect.flow_runs import resume_flow_run

    canary = {"kind": "canary", "percents": [30, 100], "bake_seconds": 0.5}
    canary["approve_before_steps"] = [2]
    # no traffic here: no rule to judge, every step passes
    analysis = {"rules": [], "min_requests": 0}
    first = continuous_deployment(  # no champion yet: in place
        mlflow_block, MODEL, str(saved_models.first), {"accuracy": 0.97}, strategy=canary
    )
    assert first.action == "created", first.message
    started = time.time()
    run = FlowInThread(
        deployer=mlflow_block,
        model_name=MODEL,
        model_uri=str(saved_models.second),
        metrics={"accuracy": 0.97},
        strategy=canary,
        analysis=analysis,
        approval_poll_interval=1,
    )
    paused = _paused_run(started)
    report = _report_artifact(paused.id, f"{MODEL}-approval-step-2")
    assert "## iris: enter step 2 of 2 (challenger 100% / champion 0%)?" in report
    assert "### Step 1 (challenger 30% / champion 70%): passed" in report
    registry = mlflow_block.get_registry()
    assert registry.get_champion(MODEL).version == "1"  # held: the alias has not moved
    resume_flow_run(paused.id, run_input={"approve": True, "reason": "ok", "reviewer": "alice"})

    state = run.finish()
    assert state.is_completed(), state
    outcome = state.result()
    assert outcome.action == "promoted", outcome.message
    assert outcome.rollout.history[1].approval.by == "alice"
    assert registry.get_champion(MODEL).version == "2"
    tags = registry.get_version(MODEL, "2").tags
    assert (tags["modeldeploy.approval"], tags["modeldeploy.approval_by"]) == ("approved", "alice")
    assert tags["modeldeploy.approval_step"] == "2"
