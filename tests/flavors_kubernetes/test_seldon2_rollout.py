"""The engine's rollout runner drives Seldon Core 2 as it drives every flavor with traffic
control: canary steps to promotion, shadow to a report, abort back to the champion.

No request-metric rules here (the analysis on Kubernetes reads Prometheus, tested with the
data plane); this checks that the strategies and the flavor's Experiment agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modeldeploy.progressive.runner import (
    abort_rollout,
    begin_rollout,
    check_rollout,
    rollout_status,
    run_rollout,
)
from modeldeploy.progressive.state import FileRolloutStore
from modeldeploy.traffic import CHALLENGER

from tests.flavors_kubernetes.conftest import Cluster

FLAVOR = "seldon2"
NO_METRICS = {"rules": [], "min_requests": 0}


@pytest.fixture
def store(tmp_path: Path) -> FileRolloutStore:
    return FileRolloutStore(tmp_path / "rollouts")


def _begin(cluster: Cluster, deployer: Any, store: Any, strategy: dict[str, Any]) -> Any:
    champion = deployer.deploy_model(cluster.config(FLAVOR, version=1), timeout=cluster.timeout)
    parsed, analysis = check_rollout(deployer, strategy, NO_METRICS)
    challenger = deployer.parse_config(cluster.config(FLAVOR, version=2))
    begin_rollout(
        deployer, champion, challenger, parsed, analysis, store=store, timeout=cluster.timeout
    )
    return champion


def test_a_canary_runs_its_steps_and_promotes(
    cluster: Cluster, make_deployer: Any, store: Any
) -> None:
    deployer = make_deployer(FLAVOR)
    canary = {"kind": "canary", "percents": [20, 60], "bake_seconds": 0.2}
    champion = _begin(cluster, deployer, store, canary)
    model = cluster.config(FLAVOR)["model_name"]

    state = run_rollout(deployer, model, store=store, timeout=cluster.timeout * 3)

    assert state.phase == "succeeded", state.message
    assert [r.step.challenger_percent for r in state.history] == [20, 60, 100]
    [server] = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert server.uuid == champion.uuid and server.config.model_uri == cluster.good_uri(FLAVOR, 2)
    status = server.traffic_status()
    assert [(v.name, v.weight) for v in status.variants] == [("champion", 100)]


def test_a_shadow_reports_and_leaves_the_champion_alone(
    cluster: Cluster, make_deployer: Any, store: Any
) -> None:
    deployer = make_deployer(FLAVOR)
    _begin(cluster, deployer, store, {"kind": "shadow", "bake_seconds": 0.2})
    model = cluster.config(FLAVOR)["model_name"]

    state = run_rollout(deployer, model, store=store, timeout=cluster.timeout * 3)

    assert state.phase == "reported", state.message
    assert state.history[0].step.mirror_percent == 100
    [server] = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert server.config.model_uri == cluster.good_uri(FLAVOR, 1)
    assert [v.name for v in server.traffic_status().variants] == ["champion"]


def test_abort_in_the_middle_of_a_step_puts_everything_back(
    cluster: Cluster, make_deployer: Any, store: Any
) -> None:
    deployer = make_deployer(FLAVOR)
    champion = _begin(cluster, deployer, store, {"kind": "canary", "bake_seconds": 600})
    model = cluster.config(FLAVOR)["model_name"]
    from modeldeploy.progressive.runner import advance_rollout

    state = rollout_status(deployer, model, store=store)
    while state.phase == "starting":  # one call at a time, as a triggerer would
        state = advance_rollout(deployer, model, store=store)
    assert champion.traffic_status().weight_of(CHALLENGER) == 10

    state = abort_rollout(deployer, model, store=store)

    assert state.phase == "rolled_back"
    status = champion.traffic_status()
    assert [(v.name, v.weight) for v in status.variants] == [("champion", 100)]
    assert champion.config.model_uri == cluster.good_uri(FLAVOR, 1)
