"""Every task against real local MLflow scoring servers, inside real Prefect flow runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prefect import flow
from prefect.transactions import transaction
from prefect_modeldeploy.tasks import (
    delete_model_server,
    deploy_model,
    evaluate_gate,
    find_model_servers,
    predict,
    rollback_model,
    start_model_server,
    stop_model_server,
    verify_predictions,
)

from tests.prefect.helpers import flow_run_id, run_logs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "iris-tasks"
TIMEOUT = 120.0


def rows(saved_models: Any) -> dict[str, Any]:
    """Three iris rows in one of the formats MLflow's scoring server reads."""
    return {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}


@flow(name="tasks lifecycle")
def lifecycle(block: Any, first: str, second: str, rows: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    good = {"accuracy": 0.95}
    out["created"] = deploy_model(
        block, MODEL, first, metrics=good, gate_rules=["accuracy>=0.9"], timeout=TIMEOUT
    )
    out["found"] = find_model_servers(block, model_name=MODEL, running=True)
    out["first_answer"] = predict(block, out["created"], rows)

    # Worse than the champion: the gate says no (reason in the log) and the champion stays.
    worse = {"accuracy": 0.93}
    out["decision"] = evaluate_gate(
        worse, ["accuracy>=0.9"], champion_metric="accuracy", deployer=block, model_name=MODEL
    )
    out["kept"] = deploy_model(
        block, MODEL, second, metrics=worse, gate_rules=["accuracy>=0.9"],
        champion_metric="accuracy", timeout=TIMEOUT,
    )  # fmt: skip

    # Better: updated in place, same server and URL, now answering with the second model.
    out["updated"] = deploy_model(
        block, MODEL, second, metrics={"accuracy": 0.97}, gate_rules=["accuracy>=0.9"],
        champion_metric="accuracy", timeout=TIMEOUT,
    )  # fmt: skip
    out["second_answer"] = predict(block, out["updated"].server.uuid, rows)

    out["rolled_back"] = rollback_model(block, MODEL, timeout=TIMEOUT)
    out["after_rollback"] = predict(block, out["rolled_back"], rows)

    out["stopped"] = stop_model_server(block, out["created"], timeout=TIMEOUT)
    out["started"] = start_model_server(block, out["found"][0], timeout=TIMEOUT)
    out["verified"] = verify_predictions(block, out["started"], rows, expected=[0, 0, 0])

    out["deleted"] = delete_model_server(block, out["created"], timeout=TIMEOUT)
    out["deleted_again"] = delete_model_server(block, out["created"].server.uuid, timeout=TIMEOUT)
    out["left"] = find_model_servers(block)
    return out


def test_every_task_against_a_real_scoring_server(mlflow_block: Any, saved_models: Any) -> None:
    state = lifecycle(
        mlflow_block, str(saved_models.first), str(saved_models.second),
        rows(saved_models), return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    out = state.result()
    run_id = str(flow_run_id(state))

    created = out["created"]
    assert created.action == "created"
    server = created.server
    # Lineage defaults from the run context: flow name, flow run id, task name.
    assert (server.pipeline_name, server.run_id, server.step_name) == (
        "tasks lifecycle",
        run_id,
        "deploy_model",
    )
    assert (created.candidate_version, created.champion_version) == ("1", "1")
    assert [s.uuid for s in out["found"]] == [server.uuid]
    assert out["first_answer"] == [0, 0, 0]

    assert not out["decision"].passed
    assert "accuracy 0.93 vs champion 0.95" in out["decision"].reason
    assert out["kept"].action == "kept"
    assert out["kept"].server.uuid == server.uuid

    updated = out["updated"]
    assert updated.action == "updated"
    assert updated.server.uuid == server.uuid
    assert updated.server.prediction_url == server.prediction_url
    assert updated.champion_version == "3"  # version 2 was the rejected candidate
    assert out["second_answer"] == [2, 2, 2]

    rolled = out["rolled_back"]
    assert (rolled.action, rolled.champion_version) == ("rolled_back", "1")
    assert rolled.server.prediction_url == server.prediction_url
    assert out["after_rollback"] == [0, 0, 0]

    assert out["stopped"].state == "inactive"
    assert out["started"].state == "active"
    assert out["started"].prediction_url == server.prediction_url
    assert out["verified"].passed and out["verified"].accuracy == 1.0

    assert out["deleted"].deleted is True
    assert out["deleted_again"].deleted is False  # idempotent
    assert out["left"] == []

    # Results are JSON-ready (pydantic models or plain JSON).
    for value in out.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            json.dumps(item.model_dump(mode="json") if hasattr(item, "model_dump") else item)

    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "gate passed: accuracy 0.95 >= 0.9" in logs
    assert (
        "gate rejected: accuracy 0.93 vs champion 0.95, higher is better "
        "(worse by 0.02; must be no worse)" in logs
    )
    assert "kept the champion (version 1) serving" in logs
    assert f"mlflow model server {server.uuid} (iris-tasks) is active" in logs
    assert f"rolled {MODEL} back to version 1" in logs
    assert f"model server {server.uuid} was already gone" in logs


@flow(name="first rollout fails verification")
def first_rollout_fails(block: Any, model_uri: str, rows: dict[str, Any]) -> None:
    with transaction():
        outcome = deploy_model(block, MODEL, model_uri, metrics={"accuracy": 0.95})
        # The model answers 0 for these rows: verification fails, the transaction rolls back.
        verify_predictions(block, outcome, rows, expected=[1, 1, 1])


def test_failed_first_rollout_is_removed_by_the_rollback_hook(
    mlflow_block: Any, saved_models: Any
) -> None:
    state = first_rollout_fails(
        mlflow_block, str(saved_models.first), rows(saved_models), return_state=True
    )
    assert state.is_failed()
    assert "VerificationError" in state.message
    assert mlflow_block.get_deployer().find_model_server() == []
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "verification failed: live accuracy 0 on 3 row(s)" in logs
    assert "Running rollback hook '_roll_back_deploy'" in logs
    assert "it was the first rollout, with no previous champion to restore" in logs


def test_tasks_refuse_bad_input_before_changing_anything(mlflow_block: Any) -> None:
    @flow
    def bad_inputs() -> dict[str, str]:
        errors = {}
        for key, call in {
            "uri": lambda: deploy_model(mlflow_block, MODEL, "/no/such/model", register=False),
            "name": lambda: deploy_model(mlflow_block, "bad name!", "/tmp", register=False),
            "block": lambda: find_model_servers("local"),
            "timeout": lambda: deploy_model(mlflow_block, MODEL, "/tmp", timeout=-1),
        }.items():
            try:
                call()
            except Exception as exc:  # the task's own exception is re-raised in the flow
                errors[key] = f"{type(exc).__name__}: {exc}"
        return errors

    errors = bad_inputs()
    assert "does not exist" in errors["uri"]
    assert "model_name" in errors["name"]
    assert "'<block-type-slug>/<name>'" in errors["block"]
    assert "timeout must be zero or more seconds" in errors["timeout"]
    assert mlflow_block.get_deployer().find_model_server() == []
