"""`modeldeploy rollout status|approve|reject|promote|abort` in another process than the one
that started the rollout, against real scoring servers behind the local router."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest
from modeldeploy.progressive.runner import advance_rollout, begin_rollout, check_rollout

from tests.cli.conftest import clean_env, cli_command
from tests.conftest import SavedModels
from tests.progressive.conftest import Serving
from tests.progressive.helpers import SteadyClient

pytestmark = pytest.mark.slow


def _cli(serving: Serving, *args: str) -> subprocess.CompletedProcess[str]:
    home = serving.deployer.home
    env = clean_env(home, serving.registry.tracking_uri)
    return subprocess.run(
        [*cli_command(), "rollout", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _start_canary(serving: Serving, saved_models: SavedModels) -> None:
    strategy, analysis = check_rollout(
        serving.deployer, {"kind": "canary", "percents": [30], "bake_seconds": 600}, "p99_ms<=500"
    )
    champion = serving.deployer.find_model_server(model_name="iris")[0]
    config = serving.deployer.parse_config(serving.config(saved_models.second))
    version = serving.registry.register_candidate("iris", str(saved_models.second)).version
    config = config.model_copy(update={"model_version": version})
    state = begin_rollout(
        serving.deployer,
        champion,
        config,
        strategy,
        analysis,
        candidate_version=version,
        champion_version="1",
    )
    while state.phase == "starting":
        state = advance_rollout(serving.deployer, "iris")


def test_status_then_promote_from_the_command_line(
    serving: Serving, saved_models: SavedModels
) -> None:
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(10)
        _start_canary(serving, saved_models)
        client.wait_for(30)
        status = _cli(serving, "status", "iris")
        assert status.returncode == 0, status.stderr
        assert "step 1/2: challenger 30% / champion 70%" in status.stdout
        assert "thresholds: p99_ms<=500" in status.stdout
        as_json = json.loads(_cli(serving, "status", "iris", "--json").stdout)
        assert as_json["phase"] == "baking" and as_json["step_index"] == 0
        promoted = _cli(serving, "promote", "iris", "--json")
        assert promoted.returncode == 0, promoted.stderr
        after = len(client.timeline)
        client.wait_for(20)
    assert json.loads(promoted.stdout)["phase"] == "succeeded"
    assert client.failures == []
    assert {a.prediction for a in client.timeline[after:]} == {2}
    assert serving.registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    again = _cli(serving, "abort", "iris")
    assert again.returncode == 1 and "already ended (succeeded" in again.stderr


def test_abort_from_the_command_line_while_another_process_drives_the_rollout(
    serving: Serving, saved_models: SavedModels
) -> None:
    from modeldeploy.progressive.runner import run_rollout
    from modeldeploy.rollout import continuous_deploy

    canary = {"kind": "canary", "percents": [50], "bake_seconds": 600}
    result: dict[str, Any] = {}
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(10)
        outcome = continuous_deploy(
            serving.deployer,
            serving.config(saved_models.second),
            {},
            registry=serving.registry,
            strategy=canary,
            wait=False,
        )
        assert outcome.action == "progressing"
        driver = threading.Thread(
            target=lambda: result.update(
                state=run_rollout(serving.deployer, "iris", serving.registry)
            )
        )
        driver.start()
        while json.loads(_cli(serving, "status", "iris", "--json").stdout)["phase"] != "baking":
            client.wait_for(5)
        client.wait_for(30)  # both variants answer at 50 %
        aborted = _cli(serving, "abort", "iris", "--reason", "looks wrong")
        driver.join(timeout=120)
        after = len(client.timeline)
        client.wait_for(20)
    assert aborted.returncode == 0, aborted.stderr
    assert "rolled_back" in aborted.stdout and "looks wrong" in aborted.stdout
    assert result["state"].phase == "rolled_back"  # the driver saw it end and stopped
    assert client.predictions()[2] > 0
    assert client.failures == []
    assert {a.prediction for a in client.timeline[after:]} == {0}
    assert serving.registry.get_champion("iris").version == "1"  # type: ignore[union-attr]
    tags = serving.registry.get_version("iris", "2").tags
    assert tags["modeldeploy.rollout_reason"] == "looks wrong"


def test_approve_then_reject_held_rollouts_from_the_command_line(
    serving: Serving, saved_models: SavedModels, iris_probe: dict[str, Any]
) -> None:
    from modeldeploy.progressive.runner import run_rollout

    serving.held(saved_models.second, iris_probe)
    status = _cli(serving, "status", "iris")
    assert status.returncode == 0, status.stderr
    assert ": awaiting_approval" in status.stdout
    assert "awaiting approval to enter step 2 (challenger 100% / champion 0%)" in status.stdout
    approved = _cli(serving, "approve", "iris", "--comment", "figures fine", "--by", "alice")
    assert approved.returncode == 0, approved.stderr
    assert "step 2 entered: approved by alice: figures fine" in approved.stdout
    assert run_rollout(serving.deployer, "iris", serving.registry, timeout=120).phase == "succeeded"
    assert serving.registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    not_held = _cli(serving, "reject", "iris", "--reason", "late")
    assert not_held.returncode == 1 and "already ended (succeeded" in not_held.stderr

    serving.held(saved_models.first, iris_probe)  # version 3
    missing = _cli(serving, "reject", "iris")
    assert missing.returncode == 2 and "--reason" in missing.stderr
    rejected = _cli(serving, "reject", "iris", "--reason", "not now", "--by", "bob", "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["phase"] == "rolled_back"
    assert serving.registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    tags = serving.registry.get_version("iris", "3").tags
    assert tags["modeldeploy.rollout_reason"] == "rejected by bob: not now (before step 2)"
    assert tags["modeldeploy.approval_by"] == "bob"
