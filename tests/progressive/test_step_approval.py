"""A human approval between canary steps on the embedded default: the rollout rests at the
split of the step that passed until someone answers; approve enters the next step, reject
or no answer puts traffic back on the champion with the alias untouched and the answer
tagged on the version. Real scoring servers behind the local router, a real registry."""

from __future__ import annotations

import re
from typing import Any

import pytest
from modeldeploy.errors import ConflictError, InvalidConfigError
from modeldeploy.progressive.report import render_state, step_approval_report
from modeldeploy.progressive.runner import (
    advance_rollout,
    approve_rollout,
    reject_rollout,
    rollout_status,
    run_rollout,
)
from modeldeploy.progressive.state import store_for
from modeldeploy.rollout import continuous_deploy
from modeldeploy.traffic import CHALLENGER

from tests.conftest import SavedModels
from tests.progressive.conftest import Serving

pytestmark = pytest.mark.slow


def _split(serving: Serving) -> int:
    server = serving.deployer.find_model_server(model_name="iris")[0]
    return server.traffic_status().weight_of(CHALLENGER)


def _tags(serving: Serving, version: str) -> dict[str, str]:
    return serving.registry.get_version("iris", version).tags


def test_a_held_step_waits_then_approval_enters_it(
    serving: Serving, saved_models: SavedModels, iris_probe: dict[str, Any]
) -> None:
    state = serving.held(saved_models.second, iris_probe)
    assert state.step_index == 0 and len(state.history) == 1
    assert _split(serving) == 30  # the passed step's split stays while it waits
    # nothing is due before the deadline: advancing again changes nothing
    assert advance_rollout(serving.deployer, "iris", serving.registry).phase == "awaiting_approval"
    assert "awaiting approval to enter step 2" in render_state(state)
    report = step_approval_report(state)
    assert "enter step 2 of 2 (challenger 100% / champion 0%)?" in report
    # champion vs challenger on the probe, side by side
    assert re.search(r"\| accuracy \| 0\.9\d\d \| 0\.333 \|", report), report
    assert "No answer by " in report
    assert serving.registry.get_champion("iris").version == "1"  # type: ignore[union-attr]

    state = approve_rollout(serving.deployer, "iris", serving.registry, by="alice", comment="ok")
    assert (state.phase, state.step_index) == ("baking", 1)
    assert state.history[-1].approval is not None and state.history[-1].approval.by == "alice"
    assert _split(serving) == 100
    with pytest.raises(ConflictError, match="not waiting for an approval"):
        reject_rollout(serving.deployer, "iris", serving.registry, by="mallory")
    assert rollout_status(serving.deployer, "iris").phase == "baking"  # nothing undone
    tags = _tags(serving, "2")
    assert tags["modeldeploy.approval"] == "approved"
    assert tags["modeldeploy.approval_by"] == "alice"
    assert tags["modeldeploy.approval_reason"] == "ok"
    assert tags["modeldeploy.approval_step"] == "2"
    state = run_rollout(serving.deployer, "iris", serving.registry, timeout=120)
    assert state.phase == "succeeded", state.message
    assert "step 2 entered: approved by alice: ok" in render_state(state)
    assert serving.registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="already ended"):
        approve_rollout(serving.deployer, "iris", serving.registry, by="alice")


def test_reject_and_no_answer_roll_back_with_the_alias_untouched(
    serving: Serving, saved_models: SavedModels, iris_probe: dict[str, Any]
) -> None:
    # a step that cannot be held is refused before anything changes
    with pytest.raises(InvalidConfigError, match=r"approve_before_steps \[3\]"):
        continuous_deploy(
            serving.deployer,
            serving.config(saved_models.second),
            {},
            registry=serving.registry,
            strategy={"kind": "canary", "percents": [30], "approve_before_steps": [3]},
        )
    assert len(serving.registry.client.search_model_versions("name='iris'")) == 1
    assert len(serving.deployer.find_model_server(model_name="iris")) == 1

    serving.held(saved_models.second, iris_probe)
    state = reject_rollout(
        serving.deployer, "iris", serving.registry, by="bob", reason="p99 is too high"
    )
    assert state.phase == "rolled_back"
    assert state.message == "rolled back: rejected by bob: p99 is too high (before step 2)"
    assert _split(serving) == 0
    assert serving.registry.get_champion("iris").version == "1"  # type: ignore[union-attr]
    tags = _tags(serving, "2")
    assert (tags["modeldeploy.approval"], tags["modeldeploy.approval_by"]) == ("rejected", "bob")
    assert tags["modeldeploy.rollout"] == "canary:rolled_back"
    assert tags["modeldeploy.rollout_reason"].startswith("rejected by bob: p99 is too high")

    # nobody answers: once the deadline has passed, the next advance rejects it
    serving.held(saved_models.second, iris_probe, approval_timeout_seconds=3600)
    store = store_for(serving.deployer)
    with store.locked("iris"):
        held = rollout_status(serving.deployer, "iris")
        held.next_check_at -= 3600  # the hour has passed
        store.save(held)
    state = run_rollout(serving.deployer, "iris", serving.registry, timeout=120)
    assert state.phase == "rolled_back"
    assert "rejected: no answer within 1 h" in state.message
    assert _split(serving) == 0
    assert serving.registry.get_champion("iris").version == "1"  # type: ignore[union-attr]
    tags = _tags(serving, "3")
    assert (tags["modeldeploy.approval"], tags["modeldeploy.approval_by"]) == (
        "rejected",
        "(nobody)",
    )
    with pytest.raises(ConflictError, match="already ended"):
        approve_rollout(serving.deployer, "iris", serving.registry, by="carol")
