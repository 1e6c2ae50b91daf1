"""The rollout state: JSON round trip through the file store, and what an inconclusive
step does under each policy (the parts that need no platform)."""

from __future__ import annotations

import time
from pathlib import Path

from modeldeploy.progressive.analysis import AnalysisConfig, StepAnalysis
from modeldeploy.progressive.runner import _inconclusive
from modeldeploy.progressive.state import FileRolloutStore, RolloutState, StepRecord
from modeldeploy.progressive.strategies import Canary


def _state(policy: str, **analysis: object) -> RolloutState:
    strategy = Canary(percents=[10, 100], bake_seconds=5)
    now = time.time()
    state = RolloutState(
        model_name="iris/v2",
        flavor="mlflow",
        server_uuid="00000000-0000-0000-0000-000000000001",
        strategy=strategy,
        analysis=AnalysisConfig(on_inconclusive=policy, **analysis),  # type: ignore[arg-type]
        challenger_config={"model_name": "iris/v2", "model_uri": "/models/2"},
        steps=strategy.steps(),
        started_at=now,
        updated_at=now,
        next_check_at=now,
        ready_by=now + 60,
        phase="baking",
        step_index=0,
    )
    state.history.append(StepRecord(index=0, step=state.steps[0], started_at=now))
    return state


THIN = StepAnalysis(verdict="inconclusive", reason="3 challenger requests < 20", window_seconds=5)


def test_state_round_trips_through_the_file_store(tmp_path: Path) -> None:
    store = FileRolloutStore(tmp_path / "rollouts")
    state = _state("extend")
    state.history[0].analyses.append(THIN)
    with store.locked(state.model_name):
        store.save(state)
    loaded = store.load("iris/v2")
    assert loaded is not None
    assert loaded.model_dump() == state.model_dump()
    assert loaded.strategy == Canary(percents=[10, 100], bake_seconds=5)
    assert [p.name for p in (tmp_path / "rollouts").iterdir() if p.suffix == ".json"] == [
        "iris%2Fv2.json"
    ]
    assert store.load("other") is None


def test_extend_bakes_again_up_to_the_limit() -> None:
    state = _state("extend", max_extensions=2)
    now = time.time()
    _inconclusive(None, state, None, THIN, now)  # type: ignore[arg-type]
    assert (state.phase, state.extensions, state.next_check_at) == ("baking", 1, now + 5)
    assert "extended (1/2)" in state.message
    _inconclusive(None, state, None, THIN, now)  # type: ignore[arg-type]
    assert state.extensions == 2 and state.phase == "baking"


def test_wait_rechecks_soon_while_patience_lasts() -> None:
    state = _state("wait", recheck_seconds=0.5, max_wait_seconds=30)
    now = time.time()
    _inconclusive(None, state, None, THIN, now)  # type: ignore[arg-type]
    assert state.phase == "baking" and state.next_check_at == now + 0.5
    assert "waiting for more requests" in state.message
