"""Alias and serving never disagree: a rollout killed with SIGKILL at each of its steps
(a real subprocess, real MLflow registry and scoring server), then the next run.

Policy under test (docs/concepts.md, "Crash recovery"): a rollout that did not finish did
not happen; the next run puts the server back to the champion and tags the interrupted
candidate rolled back (also one killed before it changed any server: it never served). A
rollout killed after it promoted is complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from modeldeploy.crashpoints import CRASH_AT_ENV, STEPS
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.gate import Gate
from modeldeploy.registry import ModelRegistry
from modeldeploy.rollout import continuous_deploy, rollback

from tests.conftest import SavedModels

MODEL = "iris-crash"
BASE = {"model_name": MODEL, "pipeline_name": "cd", "step_name": "deploy"}
GATE = Gate.from_rules(["accuracy>=0.9"], champion_metric="accuracy")

ROLLOUT = """
import json, sys
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.gate import Gate
from modeldeploy.registry import ModelRegistry
from modeldeploy.rollout import continuous_deploy

args = json.loads(sys.argv[1])
deployer = MLflowModelDeployer({"home": args["home"], "tracking_uri": args["uri"]})
continuous_deploy(
    deployer, args["config"], {"accuracy": args["accuracy"]},
    Gate.from_rules(["accuracy>=0.9"], champion_metric="accuracy"),
    ModelRegistry(args["uri"]), timeout=300,
)
"""


def _killed_rollout(home: Path, uri: str, model_uri: str, accuracy: float, step: str) -> None:
    args = {
        "home": str(home),
        "uri": uri,
        "config": {**BASE, "model_uri": model_uri, "run_id": f"crash-{step}"},
        "accuracy": accuracy,
    }
    run = subprocess.run(
        [sys.executable, "-c", ROLLOUT, json.dumps(args)],
        env={**os.environ, CRASH_AT_ENV: step},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -signal.SIGKILL, f"not killed at {step}: {run.stderr[-2000:]}"


def _latest_version(registry: ModelRegistry) -> str:
    versions = registry.client.search_model_versions(f"name='{MODEL}'")
    return str(max(int(v.version) for v in versions))


def _assert_agree(deployer: MLflowModelDeployer, registry: ModelRegistry, rows: Any) -> Any:
    """champion == serving, exactly one server, and it answers as the champion's model."""
    servers = deployer.find_model_server(model_name=MODEL)
    assert len(servers) == 1, [s.uuid for s in servers]
    champion = registry.get_champion(MODEL)
    assert champion is not None
    assert servers[0].config.model_version == champion.version
    assert servers[0].config.model_uri == champion.model_uri
    assert registry.champion_history(MODEL)[-1] == champion.version
    return servers[0].predict(rows), champion


def test_a_rollout_killed_at_any_step_is_reconciled_by_the_next_run(
    mlflow_deployer: MLflowModelDeployer,
    tracking_uri: str,
    md_home: Path,
    saved_models: SavedModels,
) -> None:
    registry = ModelRegistry(tracking_uri)
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    answers = {str(saved_models.first): [0, 0, 0], str(saved_models.second): [2, 2, 2]}
    first = continuous_deploy(
        mlflow_deployer, {**BASE, "model_uri": str(saved_models.first)}, {"accuracy": 0.95},
        GATE, registry, timeout=300,
    )  # fmt: skip
    assert first.champion_version == "1"

    for step in STEPS:
        before = registry.get_champion(MODEL)
        assert before is not None
        _killed_rollout(md_home, tracking_uri, str(saved_models.second), 0.99, step)
        candidate = _latest_version(registry)

        # The next run: a candidate the gate rejects, so only reconciliation can fix things.
        nxt = continuous_deploy(
            mlflow_deployer, {**BASE, "model_uri": str(saved_models.first), "run_id": "next"},
            {"accuracy": 0.5}, GATE, registry, timeout=300,
        )  # fmt: skip
        assert nxt.action == "kept", (step, nxt.message)
        answer, champion = _assert_agree(mlflow_deployer, registry, rows)
        assert answer == answers[champion.model_uri], step
        interrupted = registry.get_version(MODEL, candidate)
        if step == "promoted":  # complete: the candidate is champion and serves
            assert champion.version == candidate and nxt.reconciled == []
            assert interrupted.tags["modeldeploy.gate"] == "passed"
        elif step == "registered":  # nothing was written: the version never served
            assert champion.version == before.version
            assert len(nxt.reconciled) == 1 and "it never served" in nxt.reconciled[0]
            assert interrupted.tags["modeldeploy.gate"] == "rolled_back"
        else:  # written or ready: put back to the champion, candidate tagged
            assert champion.version == before.version
            assert len(nxt.reconciled) == 1 and "put model server" in nxt.reconciled[0]
            assert interrupted.tags["modeldeploy.gate"] == "rolled_back"
            assert (
                "interrupted before the champion alias moved"
                in (interrupted.tags["modeldeploy.rolled_back_reason"])
            )
            assert interrupted.tags["modeldeploy.rolled_back_at"].startswith("20")

    # A rollout killed after its write, then an explicit rollback: reconciled first, the
    # target is the version before the one serving (not the one before the lost candidate).
    serving = registry.get_champion(MODEL)
    assert serving is not None and serving.model_uri == str(saved_models.second)
    _killed_rollout(md_home, tracking_uri, str(saved_models.first), 0.99, "written")
    rolled = rollback(mlflow_deployer, registry, MODEL, timeout=300)
    assert rolled.reconciled and rolled.champion_version == "1"
    answer, champion = _assert_agree(mlflow_deployer, registry, rows)
    assert champion.version == "1" and answer == [0, 0, 0]
    taken_out = registry.get_version(MODEL, serving.version)
    assert taken_out.tags["modeldeploy.gate"] == "rolled_back"
    assert taken_out.tags["modeldeploy.rolled_back_reason"].startswith("rolled back on request")
