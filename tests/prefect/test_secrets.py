"""A password in the deployer block's tracking URI stays out of the run logs and of what the
Prefect database keeps of the runs (parameters, state messages), even when MLflow's own
error text, which quotes the full URL, is what failed the task."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect_modeldeploy.tasks import deploy_model

from tests.prefect.helpers import flow_run_id, run_logs

pytestmark = [pytest.mark.usefixtures("prefect_harness")]


@flow(name="secret canary")
def deploy_with_block(deployer: str, model_uri: str) -> Any:
    return deploy_model(
        deployer, "iris-canary", model_uri, metrics={"accuracy": 0.99},
        gate_rules=["accuracy>=0.5"], champion_metric="accuracy", timeout=20,
    )  # fmt: skip


def test_a_password_in_the_block_stays_out_of_logs_and_the_database(
    md_state: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect_modeldeploy.blocks import MLflowDeployer

    canary = "canary" + secrets.token_hex(8)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    block = MLflowDeployer(
        home=str(md_state), tracking_uri=f"http://deployer:{canary}@127.0.0.1:{port}"
    )
    block.save("canary", overwrite=True)

    state = deploy_with_block(
        f"{MLflowDeployer.get_block_type_slug()}/canary",
        str(tmp_path / "no-model"),
        return_state=True,
    )

    assert state.is_failed()
    run_id = flow_run_id(state)
    logs = "\n".join(run_logs(run_id))
    assert "look up the champion of model iris-canary" in logs
    assert f"deployer:***@127.0.0.1:{port}" in logs
    assert canary not in logs
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    stored = [repr(flow_run.parameters), str(flow_run.state.message if flow_run.state else "")]
    stored += [f"{t.task_inputs!r} {t.state.message if t.state else ''}" for t in task_runs]
    assert task_runs and any("RegistryError" in s for s in stored)
    assert not any(canary in s for s in stored)
