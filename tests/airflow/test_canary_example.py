"""The canary example DAG end to end on the embedded default: a champion, a canary that is
promoted, then a candidate with broken labels that the probe catches and rolls back. The
deploy task defers through every bake time (DateTimeTrigger) and logs each analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "canary_deployment.py"

pytestmark = pytest.mark.slow


def test_canary_example_promotes_then_rolls_back_a_bad_challenger(run_dag, md_home: Path) -> None:
    from modeldeploy.registry import ModelRegistry

    first = run_dag(EXAMPLE)
    assert first.state == "success", first.states
    assert first.value("deploy")["action"] == "created"  # no champion yet: in place
    url = first.value("deploy")["prediction_url"]

    second = run_dag(EXAMPLE)
    assert second.state == "success", second.states
    promoted = second.value("deploy")
    assert promoted["action"] == "promoted", promoted["message"]
    assert promoted["prediction_url"] == url
    assert second.value("report")["steps"] == ["25%: passed", "100%: passed"]
    assert promoted["champion_version"] == "2"
    # it deferred (the state handed to the triggerer is in XCom): no worker slot while baking
    handed_over = second.value("deploy", "progressive_rollout")
    assert handed_over["rollout"]["phase"] == "baking"

    bad = run_dag(EXAMPLE, conf={"broken_labels": True})
    assert bad.state == "success", bad.states
    rolled_back = bad.value("deploy")
    assert rolled_back["action"] == "rolled_back"
    assert "accuracy" in rolled_back["message"]
    assert bad.value("report")["steps"] == ["25%: failed"]
    assert rolled_back["prediction_url"] == url
    registry = ModelRegistry(f"sqlite:///{md_home / 'mlflow.db'}")
    assert registry.get_champion("iris-canary").version == "2"  # type: ignore[union-attr]
    tags = registry.get_version("iris-canary", "3").tags
    assert tags["modeldeploy.rollout"] == "canary:rolled_back"
